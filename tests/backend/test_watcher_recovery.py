"""The watch evaluator after a failure: it goes on from the last event it looked at.

The failure is made in this process (the evaluator's read of a gap raises once, as when
the database drops a connection), so the app runs in-process, with its real writer,
reader, channels and evaluator on a real SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.services import watcher
from backend.settings import Settings
from cli import admin

REPO = "https://github.com/acme/recovering"
SHA = "f6b4c06e5e54e1856eff03bf0e464ea0bc86da8f"


def data(step: int, loss: float) -> dict[str, object]:
    return {
        "type": "data",
        "repo_url": REPO,
        "baseline_sha": SHA,
        "name": "brisk-lamb",
        "client": "dvclive",
        "step": step,
        "metrics": {"dvclive/metrics.json": {"data": {"loss": loss, "step": step}}},
    }


async def test_events_that_arrive_while_the_evaluator_restarts_are_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "watched.db"
    admin.add_user(db, "alice", "correct horse battery", admin=False)
    token = admin.create_token(db, "alice").token
    failures: list[int] = []
    real_in_order = watcher.in_order

    async def in_order_failing_once(*args: Any) -> AsyncIterator[Any]:
        if not failures:
            failures.append(args[2].id)
            raise OSError("the database went away for a moment")
        async for event in real_in_order(*args):
            yield event

    monkeypatch.setattr(watcher, "in_order", in_order_failing_once)
    app = create_app(Settings(db=db))
    async with AsyncTestClient(app) as client:
        login = await client.post(
            "/api/auth/login", json={"username": "alice", "password": "correct horse battery"}
        )
        client.headers["Authorization"] = f"Bearer {login.json()['session_token']}"
        project = await client.post("/api/projects", json={"name": "r", "repo_url": REPO})
        watch = await client.post(
            "/api/watches",
            json={
                "kind": "threshold",
                "project_id": project.json()["id"],
                "metric": "loss",
                "op": "<",
                "threshold": 0.3,
            },
        )
        assert watch.status_code == 201, watch.text
        live = {"Authorization": f"token {token}"}
        # The first event the evaluator reads fails it; it restarts a second later.
        assert (await client.post("/api/live", json=data(0, 0.9), headers=live)).is_success
        for _ in range(50):
            if failures:
                break
            await asyncio.sleep(0.05)
        assert failures, "the evaluator never read an event"
        # Posted while it is down: the loss crosses the threshold.
        assert (await client.post("/api/live", json=data(1, 0.2), headers=live)).is_success
        alerts: list[dict[str, Any]] = []
        for _ in range(100):
            alerts = (await client.get("/api/alerts")).json()
            if alerts:
                break
            await asyncio.sleep(0.05)
        assert [a["title"] for a in alerts] == ["brisk-lamb: loss = 0.2 at step 1"]

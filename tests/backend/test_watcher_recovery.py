"""The watch evaluator after a failure: it goes on from the last event it looked at.

The failure is made in this process (the evaluator fails once on a message it took from
the channel, as when the database drops a connection while it reads), so the app runs
in-process, with its real writer, reader, channels and evaluator on a real SQLite file.
"""

from __future__ import annotations

import asyncio
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
    failures: list[bytes] = []
    real_decode = watcher.decode_message

    def decode_failing_once(raw: bytes) -> tuple[Any, ...]:
        if not failures:
            failures.append(raw)
            raise OSError("the database went away for a moment")
        return real_decode(raw)

    monkeypatch.setattr(watcher, "decode_message", decode_failing_once)
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

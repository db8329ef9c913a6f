"""The watch evaluator after a failure: it goes on from the last event it looked at.

The failure is made in this process (the evaluator fails once on a message it took from
the channel, as when the database drops a connection while it reads), so the app runs
in-process, with its real writer, reader, channels and evaluator on a real SQLite file.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.repository import StoredEvent
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


def alice_with_token(db: Path) -> str:
    """Alice in a new database; her access token."""
    admin.add_user(db, "alice", "correct horse battery", admin=False)
    return admin.create_token(db, "alice").token


async def sign_in(client: AsyncTestClient[Any]) -> None:
    login = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "correct horse battery"}
    )
    client.headers["Authorization"] = f"Bearer {login.json()['session_token']}"


async def watch_loss_below(client: AsyncTestClient[Any], project_id: int, value: float) -> None:
    watch = await client.post(
        "/api/watches",
        json={
            "kind": "threshold",
            "project_id": project_id,
            "metric": "loss",
            "op": "<",
            "threshold": value,
        },
    )
    assert watch.status_code == 201, watch.text


async def first_alerts(client: AsyncTestClient[Any]) -> list[dict[str, Any]]:
    """The alerts, once there are any (up to 5 s)."""
    alerts: list[dict[str, Any]] = []
    for _ in range(100):
        alerts = (await client.get("/api/alerts")).json()
        if alerts:
            break
        await asyncio.sleep(0.05)
    return alerts


async def test_events_that_arrive_while_the_evaluator_restarts_are_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "watched.db"
    token = alice_with_token(db)
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
        await sign_in(client)
        project = await client.post("/api/projects", json={"name": "r", "repo_url": REPO})
        await watch_loss_below(client, project.json()["id"], 0.3)
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
        alerts = await first_alerts(client)
        assert [a["title"] for a in alerts] == ["brisk-lamb: loss = 0.2 at step 1"]


async def test_with_no_watch_events_are_passed_over_until_one_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "unwatched.db"
    token = alice_with_token(db)
    decoded: list[bytes] = []
    real_decode = watcher.decode_message

    def recording_decode(raw: bytes) -> tuple[Any, ...]:
        decoded.append(raw)
        return real_decode(raw)

    monkeypatch.setattr(watcher, "decode_message", recording_decode)
    app = create_app(Settings(db=db))
    async with AsyncTestClient(app) as client:
        await sign_in(client)
        live = {"Authorization": f"token {token}"}
        for step in range(5):
            assert (await client.post("/api/live", json=data(step, 0.9), headers=live)).is_success
        project = await client.post("/api/projects", json={"name": "r", "repo_url": REPO})
        await asyncio.sleep(0.2)
        # Nobody watches anything: no event was decoded for the evaluator.
        assert decoded == []
        await watch_loss_below(client, project.json()["id"], 0.3)
        # From the watch on, events are evaluated: the next crossing fires it.
        assert (await client.post("/api/live", json=data(5, 0.2), headers=live)).is_success
        alerts = await first_alerts(client)
        assert [a["title"] for a in alerts] == ["brisk-lamb: loss = 0.2 at step 5"]
        assert decoded, "the evaluator never decoded an event once watched"


def test_with_no_watch_only_the_next_events_in_order_are_passed_over() -> None:
    evaluator = watcher.Watcher(None, None, None, Settings(), time.time)  # type: ignore[arg-type]
    evaluator._evaluated = 10

    def message(*events: tuple[int, str]) -> bytes:
        return msgspec.msgpack.encode(
            [StoredEvent(kind=kind, data=b"{}", id=event_id) for event_id, kind in events]
        )

    # The next ids: passed over, and the evaluator is further on.
    assert evaluator._nothing_to_evaluate(message((11, "experiment"), (12, "points")))
    assert evaluator._evaluated == 12
    # A change of watches, or ids skipped (another process's message, late; one a fan-out
    # outage lost, which may hold a change of watches): the full way, which reads them.
    assert not evaluator._nothing_to_evaluate(message((13, "watches")))
    assert not evaluator._nothing_to_evaluate(message((15, "points")))
    assert evaluator._evaluated == 12


async def test_a_reload_starts_runs_nobody_followed_from_their_stored_step(
    tmp_path: Path,
) -> None:
    """A run no watch covered is not followed; when a watch arrives (a reload), what was
    kept of it must not be its step time from long ago: that made a new stalled watch fire
    at once on a run stepping every second."""
    from backend.db.connection import connect_async

    db = tmp_path / "followed.db"
    token = alice_with_token(db)
    app = create_app(Settings(db=db))
    async with AsyncTestClient(app) as client:
        live = {"Authorization": f"token {token}"}
        for step in range(3):
            posted = await client.post("/api/live", json=data(step, 0.9), headers=live)
            assert posted.is_success
        experiment_id = posted.json()["experiment_id"]
    reader = await connect_async(db)
    try:
        evaluator = watcher.Watcher(None, reader, None, Settings(), time.time)  # type: ignore[arg-type]
        long_ago = time.time() - 3600
        old = watcher.Run("brisk-lamb", 1, None, None, 0, long_ago)  # seen at step 0
        evaluator.runs = {experiment_id: old}
        await evaluator.reload()
        fresh = evaluator.runs[experiment_id]
        assert fresh.step == 2 and fresh.last_step_at > time.time() - 60
        # Still at the step last seen: what was learnt (when it got there) is kept.
        evaluator.runs = {experiment_id: watcher.Run("brisk-lamb", 1, None, None, 2, long_ago)}
        await evaluator.reload()
        assert evaluator.runs[experiment_id].last_step_at == long_ago
    finally:
        await reader.close()


async def test_a_metric_watch_fires_on_new_values_not_when_a_quiet_run_is_swept_or_failed(
    tmp_path: Path,
) -> None:
    """Runs silent below a new watch's threshold fired it when the sweeper stopped them
    (a status change brings no new value); a completed run below it never did."""
    db = tmp_path / "quiet.db"
    token = alice_with_token(db)
    app = create_app(Settings(db=db, stale_after=1.0, sweep_interval=0.1))
    async with AsyncTestClient(app) as client:
        await sign_in(client)
        live = {"Authorization": f"token {token}"}
        quiet = {**data(0, 0.2), "name": "quiet"}
        assert (await client.post("/api/live", json=quiet, headers=live)).is_success
        marked = {**data(0, 0.1), "name": "marked"}
        posted = await client.post("/api/live", json=marked, headers=live)
        project = await client.post("/api/projects", json={"name": "r", "repo_url": REPO})
        await watch_loss_below(client, project.json()["id"], 0.3)
        experiment_id = posted.json()["experiment_id"]
        quiet_id = experiment_id - 1
        for _ in range(100):  # silent for a second: swept to Stopped
            if (await client.get(f"/api/experiments/{quiet_id}")).json()["status"] == "stopped":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the sweeper never stopped the quiet run")
        failed = await client.post(f"/api/experiments/{experiment_id}/fail")
        assert failed.status_code == 200, failed.text
        await asyncio.sleep(0.5)
        assert (await client.get("/api/alerts")).json() == []
        # DVC's own `done` after the mark brings values: they are looked at.
        done = {**marked, "type": "done", "client": "dvc", "metrics": data(0, 0.05)["metrics"]}
        assert (await client.post("/api/live", json=done, headers=live)).is_success
        alerts = await first_alerts(client)
        assert [a["title"] for a in alerts] == ["marked: loss = 0.05 at step 0"]
        # A new value below it does fire (the watch works).
        assert (await client.post("/api/live", json=data(1, 0.25), headers=live)).is_success
        for _ in range(100):
            alerts = (await client.get("/api/alerts")).json()
            if len(alerts) == 2:
                break
            await asyncio.sleep(0.05)
        assert alerts[0]["title"] == "brisk-lamb: loss = 0.25 at step 1"

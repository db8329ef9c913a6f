"""SVG snapshots of the main screens at 80x24, in colour and with NO_COLOR.

Behaviour is tested against a real server elsewhere; a picture must be the same on every
run, so here the API answers with fixed data (a scripted transport) and the TUI's clock is
frozen. A change in how a screen looks fails these tests; after a deliberate change,
regenerate them with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and review
the SVGs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest

from tests.tui.conftest import until
from tui import clock
from tui.app import LiveStudioApp
from tui.client import Api
from tui.settings import TuiSettings

FROZEN = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
SHA_A, SHA_B = "3f2a9c1" + "0" * 33, "9be14d7" + "1" * 33


def _row(id_: int, sha: str, name: str, status: str, step: int, loss: float, lr: float) -> dict:
    return {
        "id": id_,
        "baseline_sha": sha,
        "name": name,
        "status": status,
        "client": "dvclive",
        "message": "baseline cnn" if sha == SHA_A else "wider layers",
        "step": step,
        "started_at": "2026-03-01T11:00:00Z",
        "updated_at": "2026-03-01T12:00:00Z",
        "finished_at": "2026-03-01T12:00:00Z",
        "errors": [{"cls": "RuntimeError", "text": "CUDA out of memory"}]
        if status == "failed"
        else [],
        "metrics": {"train/loss": loss, "train/acc": round(1 - loss / 3, 4), "val/loss": "nan"}
        if status == "failed"
        else {"train/loss": loss, "train/acc": round(1 - loss / 3, 4), "val/loss": loss * 1.1},
        "params": {"lr": lr, "model/layers": 2 if sha == SHA_A else 4},
    }


ROWS = [
    _row(1, SHA_A, "baseline-cnn", "completed", 9, 0.31, 0.01),
    _row(2, SHA_A, "lr-too-high", "failed", 4, 2.5, 0.5),
    _row(3, SHA_B, "wider-net", "stopped", 7, 0.27, 0.01),
]
PROJECT = {
    "id": 1,
    "name": "mnist",
    "repo_url": "git@github.com:acme/mnist.git",
    "owner": "alice",
    "experiments": 3,
    "running": 0,
}
TOKEN = {
    "id": 1,
    "name": "profile",
    "kind": "profile",
    "prefix": "lst_Ab3x",
    "scopes": [],
    "created_at": "2026-02-01T09:00:00Z",
    "last_used_at": "2026-03-01T12:00:00Z",
}


WATCH = {
    "id": 1,
    "kind": "threshold",
    "metric": "val/loss",
    "op": "<",
    "threshold": 0.3,
    "project_id": 1,
    "webhook_url": "https://hooks.slack.com/services/T0/B0/x",
    "target": "mnist",
    "created_at": "2026-02-01T09:00:00Z",
}
ALERT = {
    "id": 4,
    "watch_id": 1,
    "experiment_id": 3,
    "experiment_name": "wider-net",
    "project_id": 1,
    "fired_at": "2026-03-01T13:58:00Z",
    "title": "wider-net: val/loss = 0.297 at step 7",
    "detail": "watch 1: val/loss < 0.3 on project mnist",
    "webhook": True,
    "deliveries": [
        {
            "attempt": 1,
            "at": "2026-03-01T13:58:00Z",
            "status": 503,
            "error": "the receiver answered 503",
        },
        {"attempt": 2, "at": "2026-03-01T13:58:02Z", "status": 200, "error": None},
    ],
}


def _series(experiment_id: int) -> dict[str, list[list[float]]]:
    row = next(r for r in ROWS if r["id"] == experiment_id)
    final = row["metrics"]["train/loss"]
    return {
        "train/loss": [
            [s, round(2.4 - (2.4 - final) * s / row["step"], 4)] for s in range(row["step"] + 1)
        ],
        "train/acc": [[s, round(0.1 + 0.08 * s, 4)] for s in range(row["step"] + 1)],
    }


async def _held_open() -> AsyncIterator[bytes]:
    yield b": connected\n\n"
    await asyncio.Event().wait()  # an idle stream: connected, no events


def _answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/events"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Stream())
    routes: dict[str, Callable[[], object]] = {
        "/api/projects": lambda: [PROJECT],
        "/api/invitations": lambda: [],
        "/api/user/keys": lambda: [
            {
                "id": 1,
                "fingerprint": "SHA256:U6ewVKrX00BuC5JShrw3NqD/9Io952bot2UUSa3zDIY",
                "key_type": "ssh-ed25519",
                "comment": "alice@laptop",
                "created_at": "2026-02-01T09:00:00Z",
                "last_used_at": None,
            }
        ],
        "/api/projects/1/experiments": lambda: ROWS,
        "/api/projects/1/members": lambda: {
            "owner": "alice",
            "members": ["alice", "bob"],
            "invited": ["carol"],
        },
        "/api/projects/1/baseline": lambda: {"experiment_id": 1},
        "/api/watches": lambda: [WATCH],
        "/api/alerts": lambda: [ALERT],
        "/api/user": lambda: {
            "username": "alice",
            "is_admin": True,
            "profile_token": TOKEN,
            "client_tokens": [],
        },
    }
    if path in routes:
        return httpx.Response(200, json=routes[path]())
    parts = path.split("/")
    if path.startswith("/api/experiments/") and len(parts) == 4:
        row = next(r for r in ROWS if r["id"] == int(parts[3]))
        return httpx.Response(
            200, json={**row, "series": list(_series(row["id"])), "images": [], "poster": "alice"}
        )
    if path.endswith("/series"):
        series = _series(int(parts[3]))
        if request.url.params.get("times"):
            start = FROZEN.timestamp() - 3600
            series = {k: [[s, v, start + 60 * s] for s, v in p] for k, p in series.items()}
        return httpx.Response(200, json=series)
    return httpx.Response(404, json={"detail": f"no route {path}"})


class _Stream(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in _held_open():
            yield chunk


@pytest.fixture
def snapshot_app(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Callable[[], LiveStudioApp]:
    monkeypatch.setattr(clock, "now", lambda: FROZEN.timestamp())
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")

    def make() -> LiveStudioApp:
        settings = TuiSettings(
            server="http://livestudio.test", session_file=tmp_path / "session.json"
        )
        api = Api("http://livestudio.test", "lss_snapshot", transport=httpx.MockTransport(_answer))
        return LiveStudioApp(settings, api, "alice")

    return make


def _project_rows(app: LiveStudioApp) -> int:
    return app.screen.query_one("#projects").row_count  # type: ignore[no-any-return]


async def _project(pilot) -> None:
    app = pilot.app
    await until(
        pilot, lambda: app.screen.query("#projects") and app.screen.query_one("#projects").row_count
    )
    await pilot.press("enter")
    await until(pilot, lambda: getattr(app.screen, "state", None) and app.screen.state.rows)
    await pilot.pause()


async def _projects(pilot) -> None:
    app = pilot.app
    await until(
        pilot, lambda: app.screen.query("#projects") and app.screen.query_one("#projects").row_count
    )
    await pilot.pause()


def _after(*keys: str, wait_for: str | None = None) -> Callable:
    async def run(pilot) -> None:
        await _project(pilot)
        await pilot.press(*keys)
        if wait_for is not None:
            await until(pilot, lambda: type(pilot.app.screen).__name__ == wait_for)
        await pilot.pause(0.3)

    return run


SCREENS = {
    "projects": _projects,
    "project_table": _after(),
    "details": _after("enter", wait_for="DetailsScreen"),
    "plots": _after("p", wait_for="PlotsScreen"),
    "compare": _after("up", "c", wait_for="CompareScreen"),
    "profile": _after("t", wait_for="ProfileScreen"),
    "help": _after("question_mark", wait_for="HelpScreen"),
    "alerts": _after("A", wait_for="AlertsScreen"),
    "members": _after("u", wait_for="MembersScreen"),
}


@pytest.mark.parametrize("colour", ["colour", "no_color"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(
    snap_compare, snapshot_app, monkeypatch: pytest.MonkeyPatch, screen: str, colour: str
) -> None:
    if colour == "no_color":
        monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(snapshot_app(), terminal_size=(80, 24), run_before=SCREENS[screen])


def test_fixture_rows_are_valid_wire_rows() -> None:
    from msgspec import json as mjson

    from shared.api import ExperimentRow

    rows = mjson.decode(json.dumps(ROWS), type=list[ExperimentRow])
    assert [r.status for r in rows] == ["completed", "failed", "stopped"]


def test_project_table_scrolled_right(snap_compare, snapshot_app) -> None:
    """Columns out of view are not drawn; scrolling right must still show every cell."""

    async def run_before(pilot) -> None:
        await _project(pilot)
        await pilot.press(*["right"] * 9)
        await pilot.pause(0.3)

    assert snap_compare(snapshot_app(), terminal_size=(80, 24), run_before=run_before)

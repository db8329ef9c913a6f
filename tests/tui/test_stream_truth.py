"""The event stream never gives up silently, and a gone project closes its own screens."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import Server, User, fixture_bodies
from tests.tui.conftest import SIZE, bobs_project_with, until
from tui.app import LiveStudioApp
from tui.client import Api, StreamEvent, StreamGone, StreamState
from tui.messages import ExperimentChanged, StreamReset
from tui.screens.details import DetailsScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.streaming import pump_events
from tui.widgets.status_bar import StatusBar

BODIES = fixture_bodies("dvclive_basic")


def scripted(answers: list[httpx.Response]) -> httpx.MockTransport:
    """A server that answers the stream with ``answers`` in turn.

    Statuses a real livestudio cannot be made to send on demand (a proxy's 502, a 503
    while the database is away, a garbled event) are played by this transport.
    """
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if queue else httpx.Response(404, json={"detail": "gone"})

    return httpx.MockTransport(handle)


def sse(*events: tuple[str, str, int]) -> httpx.Response:
    body = "".join(f"event: {kind}\ndata: {data}\nid: {i}\n\n" for kind, data, i in events)
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


async def test_server_errors_are_retried_with_backoff_and_a_404_ends_the_stream() -> None:
    api = Api(
        "http://livestudio.test",
        "lss_x",
        transport=scripted(
            [
                httpx.Response(503, json={"detail": "The database is locked."}),
                httpx.Response(502, text="bad gateway"),
                sse(("keep", "{}", 1)),
                httpx.Response(404, json={"detail": "Project 3 does not exist."}),
            ]
        ),
    )
    states: list[StreamState] = []
    with pytest.raises(StreamGone) as gone:
        async for item in api.events("/api/projects/3/events", max_backoff=0.01):
            if isinstance(item, StreamState):
                states.append(item)
    assert "does not exist" in gone.value.detail
    assert [s.connected for s in states] == [False, False, True, False]
    assert "503" in states[0].reason and "locked" in states[0].reason
    assert "502" in states[1].reason
    await api.close()


async def test_a_bad_event_is_skipped_and_turned_into_a_refetch() -> None:
    class Target:
        def __init__(self) -> None:
            self.got: list[object] = []

        def post_message(self, message: object) -> bool:
            self.got.append(message)
            return True

    row = (
        '{"id":1,"baseline_sha":"' + "a" * 40 + '","name":"n","status":"running",'
        '"client":"dvclive","started_at":"2026-01-01T00:00:00Z",'
        '"updated_at":"2026-01-01T00:00:00Z"}'
    )
    api = Api(
        "http://livestudio.test",
        "lss_x",
        transport=scripted([sse(("experiment", '{"id": "not a row"}', 1), ("experiment", row, 2))]),
    )
    target = Target()
    with pytest.raises(StreamGone):
        await pump_events(api, "/api/projects/1/events", lambda: [target])  # type: ignore[list-item]
    kinds = [type(m) for m in target.got]
    assert StreamReset in kinds and ExperimentChanged in kinds
    assert kinds.index(StreamReset) < kinds.index(ExperimentChanged)
    assert isinstance(StreamEvent("x", "{}", 1).decode(), dict)
    await api.close()


async def test_a_deleted_project_closes_its_screens_not_whatever_is_on_top(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    body = {**BODIES[1], "repo_url": "git@github.com:bob/shared.git"}
    bob, project = await bobs_project_with(server, alice, body)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        projects = app.screen
        await until(pilot, lambda: projects.query_one("#projects").row_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen.state.rows)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen))
        removed = await asyncio.to_thread(
            bob.client.delete, f"/api/projects/{project['id']}/members/alice"
        )
        assert removed.status_code == 204
        await until(pilot, lambda: app.screen is projects)
        assert not any(isinstance(s, ProjectScreen | DetailsScreen) for s in app.screen_stack)
        await until(
            pilot, lambda: any("no longer a member" in n.message for n in app._notifications)
        )
        await until(pilot, lambda: projects.query_one("#projects").row_count == 0)
        bar = projects.query_one(StatusBar)
        assert bar.connected and bar.connection == "connected"

"""Drive the real TUI with Pilot against a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, Server, User
from tui.app import LiveStudioApp, build_app
from tui.client import Api
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.settings import Session, TuiSettings
from tui.widgets.footer import Footer

SIZE = (80, 24)


async def until(pilot, condition: Callable[[], object], timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Let the app run until ``condition()`` is true (or fail after ``timeout``).

    Generous: a loaded machine (CI with both cores busy) was seen to need more than 10 s.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def open_project(pilot, app: LiveStudioApp) -> ProjectScreen:
    """From the projects list, open the first project and wait for its rows."""
    await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
    await until(pilot, lambda: app.screen.query_one("#projects").row_count > 0)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
    screen = app.screen
    await until(pilot, lambda: screen.state.rows)
    return screen


def problem_of(dialog) -> str:
    """What a dialog's ``#problem`` line says (why what it sent was refused)."""
    from textual.widgets import Label

    return str(dialog.query_one("#problem", Label).render())


def footer_text(footer: Footer) -> str:
    """The footer as the terminal shows it, its lines joined by newlines."""
    return footer.render().plain


async def post(user: User, body: dict) -> int:
    """Post a live event from a thread, as an outside training job would."""
    response = await asyncio.to_thread(user.live, body)
    assert response.status_code == 200, response.text
    return int(response.json()["experiment_id"])


async def bobs_project_with(server: Server, member: User, body: dict) -> tuple[User, dict]:
    """A new user bob, whose post of ``body`` made a project ``member`` joined; (bob, it)."""
    bob = await asyncio.to_thread(server.add_user, "bob")
    await post(bob, body)
    (project,) = (await asyncio.to_thread(bob.client.get, "/api/projects")).json()
    path = f"/api/projects/{project['id']}/members"
    await asyncio.to_thread(bob.client.post, path, json={"username": member.name})
    await asyncio.to_thread(member.client.post, f"/api/invitations/{project['id']}/accept")
    return bob, project


@pytest.fixture
def tui_settings(tmp_path: Path, server: Server) -> TuiSettings:
    """Settings with a private session file and short highlights."""
    return TuiSettings(
        server=server.url, highlight_seconds=1.0, session_file=tmp_path / "cfg" / "session.json"
    )


@pytest.fixture
def logged_in_app(tui_settings: TuiSettings, server: Server, alice: User) -> LiveStudioApp:
    """The app with alice's session already stored."""
    token = alice.client.headers["Authorization"].split()[1]
    tui_settings.save_session(Session(server.url, "alice", token))
    return build_app(tui_settings, Api(server.url, token))


__all__ = ["PASSWORD", "SIZE", "bobs_project_with", "footer_text", "post", "until"]


async def select_runs(pilot, screen: ProjectScreen, ids: list[int]):
    """Wait for ``ids`` in the project table, then select each with space; the table."""
    from tui.widgets.experiment_table import ExperimentTable

    table = screen.query_one(ExperimentTable)
    await until(pilot, lambda: all(i in screen.state.rows for i in ids))
    for experiment_id in ids:
        table.move_cursor(row=table.shown_keys().index(str(experiment_id)))
        await pilot.press("space")
    return table


def on_screen(app: LiveStudioApp) -> str:
    """The text the terminal shows: the compositor's lines, as written to it (a widget's
    own ``render_line`` draws afresh, so it misses lines left stale on screen)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def compare_runs(pilot, app: LiveStudioApp, ids: list[int]):
    """Open the project, select ``ids`` and press ``c``: the compare screen."""
    from tui.screens.compare import CompareScreen

    screen = await open_project(pilot, app)
    await select_runs(pilot, screen, ids)
    await pilot.press("c")
    await until(pilot, lambda: isinstance(app.screen, CompareScreen))
    return app.screen


async def open_plots(pilot, app: LiveStudioApp, metric: str):
    """``p`` on the project table, then wait for ``metric``'s chart to be drawn."""
    from tui.screens.plots import PlotsScreen

    await pilot.press("p")
    await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
    plots = app.screen
    await until(pilot, lambda: metric in plots.charts and plots.charts[metric].drawn)
    return plots, plots.charts[metric]


async def details_text(pilot, app: LiveStudioApp) -> str:
    """``enter`` on the cursor's row: the details screen's text once it has loaded."""
    import io

    from rich.console import Console

    from tui.screens.details import DetailsScreen

    await pilot.press("enter")
    await until(
        pilot, lambda: isinstance(app.screen, DetailsScreen) and app.screen.detail is not None
    )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(app.screen.query_one("#body").content)
    return console.export_text()

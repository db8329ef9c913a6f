"""Answers that arrive late: dialogs, plots and the projects list stay right (found by review)."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, open_project, post, problem_of, until
from tui.app import LiveStudioApp
from tui.screens.dialogs import InviteDialog, KeyDialog
from tui.screens.members import MembersScreen
from tui.screens.plots import PlotsScreen
from tui.screens.profile import ProfileScreen
from tui.screens.projects import ProjectsScreen

BODIES = fixture_bodies("dvclive_basic")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b"


async def _profile_sending_a_key(pilot, app: LiveStudioApp, gate: asyncio.Event) -> KeyDialog:  # type: ignore[no-untyped-def]
    """The profile's key dialog, sending a key whose answer waits for ``gate``."""
    real = app.api.add_ssh_key

    async def held(text: str):  # type: ignore[no-untyped-def]
        await gate.wait()
        return await real(text)

    app.api.add_ssh_key = held  # type: ignore[method-assign]
    await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
    await pilot.press("t")
    await until(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.info)
    await pilot.press("s")
    await until(pilot, lambda: isinstance(app.screen, KeyDialog))
    dialog = app.screen
    dialog.query_one(Input).value = KEY
    await pilot.press("enter")
    await until(pilot, lambda: "Sending" in problem_of(dialog))
    return dialog


def names(app: LiveStudioApp) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack]


async def test_an_answer_under_the_palette_closes_the_dialog_only_once_back_on_top(
    logged_in_app: LiveStudioApp,
) -> None:
    app = logged_in_app
    gate = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        await _profile_sending_a_key(pilot, app, gate)
        await pilot.press("ctrl+p")  # the command palette over the dialog, while it sends
        await until(pilot, lambda: names(app)[-1] == "CommandPalette")
        gate.set()
        await pilot.pause(0.3)
        assert names(app)[-2:] == ["KeyDialog", "CommandPalette"]  # the palette stays
        await pilot.press("escape")  # the palette goes; the answered dialog follows it
        await until(pilot, lambda: names(app)[-1] == "ProfileScreen")
        await until(pilot, lambda: app.screen.keys)  # the key was added, and listed


async def test_escape_as_the_answer_arrives_closes_the_dialog_and_nothing_under_it(
    logged_in_app: LiveStudioApp,
) -> None:
    app = logged_in_app
    gate = asyncio.Event()
    async with app.run_test(size=SIZE) as pilot:
        await _profile_sending_a_key(pilot, app, gate)
        await pilot.press("escape")  # closed while it sends
        await until(pilot, lambda: names(app)[-1] == "ProfileScreen")
        gate.set()
        await pilot.pause(0.3)
        assert names(app)[-1] == "ProfileScreen"  # the answer closed nothing more


async def test_a_refusal_that_repeats_markup_is_shown_as_typed(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    await post(alice, BODIES[1])
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await until(pilot, lambda: app.screen.query_one("#projects").row_count == 1)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MembersScreen))
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InviteDialog))
        dialog = app.screen
        dialog.query_one(Input).value = "bob[/b]"
        await pilot.press("enter")
        await until(pilot, lambda: "bob[/b]" in problem_of(dialog))


async def test_a_run_deleted_while_its_plots_load(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    ids = {name: await post(alice, {**BODIES[2], "name": name}) for name in ("a", "b", "c")}
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await until(pilot, lambda: len(screen.state.rows) == 3)
        gate = asyncio.Event()
        real = app.api.timed_series

        async def slow(experiment_id: int, **kw: object):  # type: ignore[no-untyped-def]
            got = await real(experiment_id, **kw)  # type: ignore[arg-type]
            if experiment_id == ids["b"]:
                await gate.wait()
            return got

        app.api.timed_series = slow  # type: ignore[method-assign]
        plots = PlotsScreen({ids[n]: n for n in ("a", "b", "c")}, screen.events_path)
        app.push_screen(plots)
        await pilot.pause(0.3)
        gone = await asyncio.to_thread(alice.client.delete, f"/api/experiments/{ids['b']}")
        assert gone.status_code == 204
        await until(pilot, lambda: ids["b"] not in plots.names)
        gate.set()
        await until(pilot, lambda: plots.images_shown)  # the load went on to "c"
        assert all(set(c.data) == {ids["a"], ids["c"]} for c in plots.charts.values())
        await post(alice, {**BODIES[4], "name": "a"})  # a redraw: no line for "b"
        await pilot.pause(0.5)
        assert app.is_running and app.screen is plots


async def test_the_projects_cursor_stays_on_its_project_when_urls_get_less_room(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    for i in range(5):
        made = await asyncio.to_thread(
            alice.client.post,
            "/api/projects",
            json={
                "name": f"p{i}",
                "repo_url": f"https://github.com/acme/a-long-repository-{i}.git",
            },
        )
        assert made.status_code == 201, made.text
    async with app.run_test(size=(100, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        table = app.screen.query_one("#projects", DataTable)
        await until(pilot, lambda: table.row_count == 5)
        await pilot.press("down", "down", "down")
        await pilot.pause()
        on = table.get_row_at(table.cursor_row)[0]
        await asyncio.to_thread(  # a longer name: the URLs get less room
            alice.client.post,
            "/api/projects",
            json={"name": "a-much-longer-project-name", "repo_url": "https://github.com/acme/x"},
        )
        await until(pilot, lambda: table.row_count == 6)
        await pilot.pause(0.3)
        assert table.get_row_at(table.cursor_row)[0] == on
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert table.get_row_at(table.cursor_row)[0] == on

"""The command palette (ctrl+p) offers the main actions of the screen in view."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, open_project, post, until
from tui.app import LiveStudioApp
from tui.screens.help import HelpScreen
from tui.screens.plots import PlotsScreen
from tui.screens.projects import ProjectsScreen

BODIES = fixture_bodies("dvclive_basic")


async def run_from_palette(pilot, app: LiveStudioApp, query: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*query)
    await pilot.pause(0.3)  # the palette searches in a worker
    await pilot.press("enter")


async def test_the_palette_runs_the_screens_actions(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    await post(alice, BODIES[2])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await run_from_palette(pilot, app, "plots")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        await pilot.press("q")
        await until(pilot, lambda: app.screen is screen)
        await run_from_palette(pilot, app, "toggle live")
        await until(pilot, lambda: screen.state.live_only)
        await run_from_palette(pilot, app, "show help")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_the_palette_offers_only_what_the_screen_can_do(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])

    async def offered(pilot, query: str) -> list[str]:  # type: ignore[no-untyped-def]
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*query)
        await pilot.pause(0.5)  # the palette searches in a worker
        found = app.screen.query_one(CommandList)
        titles = [str(found.get_option_at_index(i).prompt) for i in range(found.option_count)]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette))
        return titles

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        # The projects list has no plots nor live filter: the palette does not offer them.
        assert not any("Plots" in t or "live" in t for t in await offered(pilot, "plots"))
        assert any("help" in t for t in await offered(pilot, "help"))
        await open_project(pilot, app)
        assert any("Plots" in t for t in await offered(pilot, "plots"))

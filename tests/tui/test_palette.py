"""The command palette (ctrl+p) offers the main actions of the screen in view."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette
from textual.widgets import Static

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, open_project, post, until
from tui.app import LiveStudioApp
from tui.screens.dialogs import CopyDialog
from tui.screens.help import HelpScreen, help_markdown
from tui.screens.plots import PlotsScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.widgets.shell_lines import ShellLines

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
        # Textual's Keys panel and screenshot (a file written on the server, over SSH) are
        # left out; its theme and quit stay.
        stock = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Theme", "Quit"} <= stock and not stock & {"Keys", "Screenshot", "Maximize"}
        await open_project(pilot, app)
        assert any("Plots" in t for t in await offered(pilot, "plots"))


async def test_the_demo_welcome_shows_its_lines_in_full_copies_them_and_help_keeps_them(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    (project,) = alice.client.get("/api/projects").json()
    lines = "export DVC_STUDIO_URL=http://127.0.0.1:1\nexport DVC_STUDIO_TOKEN=lst_" + "x" * 43
    app.settings.welcome = "Demo server, for a test:"
    app.settings.welcome_lines = lines
    app.settings.open_project = project["name"]
    async with app.run_test(size=SIZE) as pilot:
        # Over the project it opened, whole lines (no toast cutting them up, no timeout).
        await until(pilot, lambda: isinstance(app.screen, CopyDialog))
        assert isinstance(app.screen_stack[-2], ProjectScreen)
        shown = app.screen.query_one("#token-value", Static)
        assert str(shown.render()).splitlines() == lines.splitlines()
        await pilot.press("y")
        assert app.clipboard == lines
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        # Whole at 80 columns (folded for 60 everywhere, the token broke mid-word)...
        help_lines = app.screen.query_one("#demo-lines", ShellLines)
        await pilot.pause()
        assert str(help_lines.render()).splitlines() == lines.splitlines()
        # ...and y copies them whole.
        app.copy_to_clipboard("")
        await pilot.press("y")
        assert app.clipboard == lines


async def test_a_project_asked_for_by_a_name_two_share_is_not_opened_at_random(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    for url in ("https://a.org/x/p1", "https://b.org/y/p1"):
        made = alice.client.post("/api/projects", json={"name": "p1", "repo_url": url})
        assert made.status_code == 201, made.text
    app.settings.open_project = "p1"
    async with app.run_test(size=SIZE) as pilot:
        told = "are all named 'p1'; pick one here."
        await until(pilot, lambda: any(told in n.message for n in app._notifications))
        assert isinstance(app.screen, ProjectsScreen)


async def test_help_lists_each_key_once_per_screen_as_it_acts(logged_in_app: LiveStudioApp) -> None:
    app = logged_in_app
    async with app.run_test(size=SIZE):
        text = help_markdown(app)
    table = text.split("## Project table")[1].split("## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    keys = [key for row in rows for key in row.split(" | ")[0].strip("| ").split(" / ")]
    assert len(keys) == len(set(keys)), rows  # ⏎ and ? were listed twice
    enter = next(row for row in rows if row.startswith("| `⏎`"))
    assert "details; on a group: fold it" in enter  # the table's own, which acts
    assert any("| page left |" in row for row in rows)  # ctrl+pgup, from scrolling (as said)
    assert "..." not in text


async def test_home_and_end_in_help_go_to_the_page_top_and_bottom(
    logged_in_app: LiveStudioApp,
) -> None:
    from textual.containers import VerticalScroll

    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.__class__.__name__ == "ProjectsScreen")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        page = app.screen.query_one(VerticalScroll)
        await pilot.press("end")
        await until(pilot, lambda: page.scroll_y > 0 and page.scroll_y == page.max_scroll_y)
        await pilot.press("tab")  # focus into one of the page's tables, if it takes it
        await pilot.press("home")
        await until(pilot, lambda: page.scroll_y == 0)


async def test_j_held_down_scrolls_as_far_as_it_was_pressed(logged_in_app: LiveStudioApp) -> None:
    """Key repeats between two frames each scrolled from the same place (Textual defers a
    scroll to the next refresh): j held down moved the page a fraction of its presses."""
    from textual.containers import VerticalScroll

    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.__class__.__name__ == "ProjectsScreen")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        page = help_screen.query_one(VerticalScroll)
        assert page.max_scroll_y > 15
        for _ in range(5):  # as a terminal's key repeat delivers them: no frame between
            help_screen.action_scroll(3)
        await pilot.pause()
        assert page.scroll_y == 15

"""The footer shows every key that applies, at 80 columns too (SPEC §6), and a click presses it."""

from __future__ import annotations

from textual.binding import Binding

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, footer_text, open_project, post, until
from tui.app import LiveStudioApp
from tui.screens.plots import PlotsScreen
from tui.screens.project import ProjectScreen
from tui.widgets.experiment_table import ExperimentTable
from tui.widgets.footer import Footer, FooterEntry, lay_out

BODIES = fixture_bodies("dvclive_basic")


def entry(description: str, width: int) -> FooterEntry:
    return FooterEntry("k", "k", description.ljust(width - 2), enabled=True)


def test_keys_wrap_like_words_and_close_up_only_to_save_a_line() -> None:
    five = [entry(str(i), 10) for i in range(5)]  # 10 cells each
    roomy = lay_out(five, 60)  # 5 keys of 10 cells and 4 gaps of 2 = 58: one line, two cells apart
    assert [(p.line, p.start) for p in roomy] == [(0, 0), (0, 12), (0, 24), (0, 36), (0, 48)]
    tight = lay_out(five, 55)  # two cells apart needs a second line, one cell apart does not
    assert [(p.line, p.start) for p in tight] == [(0, 0), (0, 11), (0, 22), (0, 33), (0, 44)]
    wrapped = lay_out(five, 25)  # an entry is never split: two a line, the fifth alone
    assert [(p.line, p.start, p.end) for p in wrapped][-1] == (2, 0, 10)
    assert all(p.end <= 25 for p in wrapped)
    assert lay_out([entry("wide", 30)], 20)[0].line == 0  # too wide for any line: its own


def shown(bindings: list[Binding]) -> list[str]:
    return [b.description for b in bindings if b.show]


async def test_every_key_of_the_project_screen_is_in_its_footer_at_80_columns(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, {**BODIES[1], "name": "alpha"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        footer = screen.query_one(Footer)
        await until(pilot, lambda: "Compare" in footer_text(footer))
        text = footer_text(footer)
        lines = text.split("\n")
        expected = shown(ProjectScreen.BINDINGS) + shown(ExperimentTable.BINDINGS) + ["palette"]
        for description in expected:
            assert f" {description}" in text, (description, text)
        assert all(len(line) <= SIZE[0] for line in lines)
        assert footer.region.height == len(lines) == 2  # wrapped, not cut off at the edge
        assert footer.region.bottom == SIZE[1]
        # Textual's one-line footer cut everything after "Baseline" off at 80 columns.
        assert "x Delete" in text and "f Fail" in text and "q Back" in text

        # Under a dialog it shows the dialog's keys (the screen's do nothing meanwhile).
        await pilot.press("x")
        await until(pilot, lambda: "y Yes" in footer_text(footer))
        assert "Delete" not in footer_text(footer)
        await pilot.press("n")
        await until(pilot, lambda: "x Delete" in footer_text(footer))

        # A click on a key presses it.
        place = next(p for p in lay_out(footer.entries, SIZE[0]) if p.entry.key == "p")
        assert await pilot.click(Footer, offset=(place.start + 1, place.line))
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots_footer = app.screen.query_one(Footer)
        await until(pilot, lambda: "Refetch" in footer_text(plots_footer))
        assert footer_text(plots_footer).count("\n") == 0  # the plots screen's keys fit one line
        # The charts' own ← → (scrolling sideways, which they never do) hid the step cursor's.
        assert "←→ Step" in footer_text(plots_footer)

"""A project with more rows than the screen: cells are drawn as rows come into view."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, details_text, open_project, select_runs, until
from tui.app import LiveStudioApp
from tui.widgets.experiment_table import ExperimentTable

BODY = fixture_bodies("dvclive_basic")[1]
RUNS = 40
LONG = "a-much-longer-note-value"


async def _opened_with(pilot, app: LiveStudioApp, runs: int):  # type: ignore[no-untyped-def]
    """The project opened, its ``runs`` rows in and drawn: (screen, table)."""
    screen = await open_project(pilot, app)
    await until(pilot, lambda: len(screen.state.rows) == runs)
    await pilot.pause()
    return screen, screen.query_one(ExperimentTable)


def body(index: int) -> dict:
    note = LONG if index == 0 else "short"  # the oldest run: the last row
    return {
        **BODY,
        "name": f"run-{index:02d}",
        "step": 0,
        "params": {"params.yaml": {"note": note}},
        "metrics": {"dvclive/metrics.json": {"data": {"loss": 1 / (index + 1), "step": 0}}},
    }


async def test_rows_out_of_view_are_drawn_when_scrolled_to(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    def post_all() -> None:
        for index in range(RUNS):
            assert alice.live(body(index)).status_code == 200

    await asyncio.to_thread(post_all)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await _opened_with(pilot, app, RUNS)
        note = next(c for c in table._columns if c.startswith("p:") and c.endswith("note"))
        drawn = [k for k in table._cells if not k.startswith("g:")]
        assert 0 < len(drawn) < SIZE[1]  # only the rows in view, not all 40
        assert table._widths[note] < len(LONG)  # the long value is far below

        table.move_cursor(column=table._columns.index(note))  # on the narrow column
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()
        last = table.current_key()
        assert last is not None and screen.state.rows[int(last)].name == "run-00"
        # In view above the horizontal scrollbar, not hidden behind it.
        assert table.show_horizontal_scrollbar
        rows_in_view = table.scrollable_size.height - 1  # under the header
        assert 0 <= table.cursor_row - table.scroll_offset.y < rows_in_view
        assert table.visible_experiment_ids()[-1] == int(last)
        assert table._widths[note] == len(LONG)  # widened once the row came into view
        assert table.get_cell(last, note) == LONG
        starts = [0]  # scrolled by whole columns: the view begins where a column does
        for column in table._columns[2:]:
            starts.append(starts[-1] + table._widths[column] + 2)
        assert table.scroll_offset.x in starts and table.scroll_offset.x > 0
        # The cursor's cell, widened by the row that came into view, is wholly in view.
        fixed = sum(table._widths[c] + 2 for c in table._columns[:2])
        start = starts[table._columns.index(note) - 2]
        visible = table.scrollable_size.width - fixed
        assert (
            table.scroll_offset.x <= start and start + len(LONG) <= table.scroll_offset.x + visible
        )
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert any(LONG in line for line in lines)  # drawn whole, not cut to the old width


async def test_a_column_narrows_when_its_widest_cell_leaves(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """Columns never shrink while rows are drawn into them (no jitter), but once the run
    that made one wide is filtered out or deleted, it narrows to what is shown."""
    for index in range(3):
        wide = {
            **body(index),
            "name": "a-long-experiment-name-x" if index == 0 else f"r{index}",
        }
        await asyncio.to_thread(alice.live, wide)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await _opened_with(pilot, app, 3)
        note = next(c for c in table._columns if c.startswith("p:") and c.endswith("note"))
        assert table._widths[note] == len(LONG) and table._widths["name"] == 24
        await pilot.press("slash", "r", "1")  # filters to the names holding "r1"
        await until(pilot, lambda: len(table.shown_keys()) < 4)
        await pilot.pause()
        assert table._widths[note] == len("short") and table._widths["name"] < 24
        await pilot.press("escape")  # the filter cleared: the long run is back, and so is
        await until(pilot, lambda: table._widths[note] == len(LONG))  # its width
        long_id = next(i for i, r in screen.state.rows.items() if r.name.startswith("a-long"))
        assert alice.client.delete(f"/api/experiments/{long_id}").status_code == 204
        await until(pilot, lambda: table._widths[note] == len("short"))
        assert table._widths["name"] < 24


async def test_the_view_starts_at_a_column_when_a_filter_narrows_columns(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """Scrolled right, then filtered: the columns left of the view narrowed under it and
    the view started inside one (`rend` for `trend`)."""
    from tui.widgets.experiment_table import FIXED, GAP

    for index in range(3):
        await asyncio.to_thread(alice.live, {**body(index), "name": f"r{index}"})
    app = logged_in_app
    async with app.run_test(size=(60, 15)) as pilot:
        _, table = await _opened_with(pilot, app, 3)

        def starts() -> list[int]:
            at = [0]
            for column in table._columns[FIXED:]:
                at.append(at[-1] + table._widths[column] + GAP)
            return at

        table.move_cursor(column=len(table._columns) - 1)  # the last column: scrolled
        await pilot.pause()
        assert table.scroll_offset.x > 0 and table.scroll_offset.x in starts()
        await pilot.press("slash", "r", "1")  # the long note's run filtered out
        await until(pilot, lambda: len(table.shown_keys()) < 4)
        await pilot.pause()
        note = next(c for c in table._columns if c.startswith("p:") and c.endswith("note"))
        assert table._widths[note] == len("short")
        assert table.scroll_offset.x in starts(), (table.scroll_offset.x, starts())


async def test_a_run_of_thousands_of_names_is_bounded_in_every_view(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """A member's run of 40,000 params and metrics took every other member's details 20 s
    to open and a minute a key press, and made a column of each: the table makes columns
    of the first 200 of each, details and compare list 500 of each and count the rest."""
    from tui.screens.compare import CompareScreen
    from tui.state import FIXED_COLUMNS, MAX_LISTED, MAX_TABLE_COLUMNS

    many = MAX_LISTED + 300
    wide = {
        **body(1),
        "name": "wide",
        "params": {"params.yaml": {f"p{i:05d}": i for i in range(many)}},
        "metrics": {"dvclive/metrics.json": {"data": {f"m{i:05d}": i / 7 for i in range(many)}}},
    }
    ids = [
        await asyncio.to_thread(lambda b=b: alice.live(b).json()["experiment_id"])
        for b in (body(0), wide)
    ]
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await _opened_with(pilot, app, 2)
        columns = screen.state.columns
        assert len(columns) == len(FIXED_COLUMNS) + 2 * MAX_TABLE_COLUMNS
        # The older run's names first (ties), then the wide run's, in the order seen.
        assert {"m:loss", "p:note"} <= set(columns)
        assert "m:m00198" in columns and "m:m00199" not in columns
        toasts = [str(n.message) for n in app._notifications]
        unlisted = screen.state.unlisted
        assert unlisted >= 2 * (many - MAX_TABLE_COLUMNS)  # every name past the columns
        assert sum(f"log {unlisted:,} more" in t for t in toasts) == 1, toasts
        table.move_cursor(row=table.shown_keys().index(str(ids[1])))
        details = await details_text(pilot, app)
        assert "p00499" in details and "p00500" not in details
        assert "300 more params: too many to list here" in details
        assert "300 more metrics: too many to list here" in details
        await pilot.press("escape")
        await select_runs(pilot, screen, ids)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        lines = {line.key: line.values for line in compare.lines}
        counts = ["300" if i == ids[1] else "0" for i in compare.ids]  # (in the table's order)
        assert lines["info:params not listed (too many)"] == counts
        assert lines["info:metrics not listed (too many)"] == counts
        assert len(lines) <= 2 + 2 * MAX_LISTED + 2 + 2  # status, step; names; the counts


async def test_a_run_of_thousands_of_series_charts_the_first_ones(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 series took the plots screen 86 s to open: the first MAX_CHARTS are charted
    (and only they fetched), a line counts the others, and new ones past it stay out."""
    from textual.widgets import Static

    from tests.tui.conftest import open_plots

    monkeypatch.setattr("tui.screens.plots.MAX_CHARTS", 3)
    monkeypatch.setattr("tui.client.NAMES_PER_URL", 8)  # a request per name or two

    def series_post(step: int, names: list[str]) -> dict:
        plots = {
            f"dvclive/plots/metrics/{n}.tsv": {"data": [{"step": step, n: 0.5}]} for n in names
        }
        return {**body(1), "name": "many", "step": step, "plots": plots}

    # A name holding a comma cannot be asked for by name (the URL's list is comma-separated).
    await asyncio.to_thread(alice.live, series_post(0, ["a1", "a2,x", "a3", "a4", "a5"]))
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        plots, _ = await open_plots(pilot, app, "a1")
        await pilot.pause()
        assert sorted(plots.charts) == ["a1", "a2,x", "a3"]
        more = plots.query_one("#charts-more", Static)
        assert more.display and "2 more are not charted" in str(more.render())
        await asyncio.to_thread(alice.live, series_post(1, ["a1", "a6"]))
        await until(pilot, lambda: "3 more are not charted" in str(more.render()))
        await until(
            pilot,
            lambda: (
                plots.charts["a1"].data and len(next(iter(plots.charts["a1"].data.values()))) == 2
            ),
        )
        assert sorted(plots.charts) == ["a1", "a2,x", "a3"]
        monkeypatch.setattr("tui.screens.details.SERIES_LISTED", 4)
        await pilot.press("escape")
        listed = " ".join((await details_text(pilot, app)).split())
        assert "a1, a2,x, a3, a4 and 2 more" in listed


async def test_charts_keep_the_series_of_their_own_and_stand_in_name_order(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut in name order, 100 of 103 charts were `extra/metric_000…099` and the losses
    were left out; and charts of series that came in one post stood in any order."""
    from tests.tui.conftest import open_plots
    from tui.widgets.metric_chart import MetricPanel

    monkeypatch.setattr("tui.screens.plots.MAX_CHARTS", 4)

    def series_post(step: int, names: list[str]) -> dict:
        plots = {
            f"dvclive/plots/metrics/{n}.tsv": {"data": [{"step": step, n: 0.5}]} for n in names
        }
        return {**body(1), "name": "many", "step": step, "plots": plots}

    family = [f"extra/metric_{i:03d}" for i in range(6)]
    await asyncio.to_thread(alice.live, series_post(0, [*family, "train/acc", "val/loss"]))
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        plots, _ = await open_plots(pilot, app, "val/loss")
        assert sorted(plots.charts) == [*family[:2], "train/acc", "val/loss"]
        # New series in one post, with room for them: in their place by name.
        monkeypatch.setattr("tui.screens.plots.MAX_CHARTS", 6)
        await asyncio.to_thread(alice.live, series_post(1, ["train/y", "train/x"]))
        await until(pilot, lambda: len(plots.charts) == 6)
        await pilot.pause()
        shown = [panel.chart.metric for panel in plots.query(MetricPanel)]
        assert shown == [*family[:2], "train/acc", "train/x", "train/y", "val/loss"]


async def test_long_metric_names_keep_both_ends_in_the_table_header(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """Cut at the end, `…_precision` and `…_recall` read as the same column."""
    from tui.widgets.experiment_table import MAX_WIDTH

    names = [f"val/a_rather_long_metric_name_for_the_{end}" for end in ("precision", "recall")]
    data = {name: 0.5 for name in names}
    await asyncio.to_thread(
        alice.live, {**body(1), "metrics": {"dvclive/metrics.json": {"data": data}}}
    )
    app = logged_in_app
    async with app.run_test(size=(220, 24)) as pilot:
        _, table = await _opened_with(pilot, app, 1)
        header = table.render_line(0).text
        for name in names:
            assert len(name) > MAX_WIDTH and name not in header
            cut = [w for w in header.split() if w.endswith(name[-8:])]
            assert len(cut) == 1 and cut[0].startswith(name[:6]) and "…" in cut[0]


async def test_wide_characters_get_columns_as_wide_as_they_are_drawn(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """A CJK character takes two cells: columns were sized in characters, so a CJK param
    value or run name got half its width and was cut to "基线模…" in a wide enough table."""
    note, name = "余弦调度", "基线模型"  # 8 cells each
    wide = {**body(0), "name": name, "params": {"params.yaml": {"note": note}}}
    await asyncio.to_thread(alice.live, wide)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        _, table = await _opened_with(pilot, app, 1)
        column = next(c for c in table._columns if c.startswith("p:") and c.endswith("note"))
        assert table._widths[column] == 8 and table._widths["name"] >= 8
        await pilot.pause()
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert any(note in line and name in line for line in lines), lines


async def test_long_run_names_keep_their_ends(logged_in_app: LiveStudioApp, alice: User) -> None:
    """Runs named alike differ at their end: cut at the end, five seeds all read
    `experiment_with_a_very_long…`."""
    names = [f"experiment_with_a_very_long_name_{'z' * 60}_seed_{i}" for i in range(3)]
    for name in names:
        await asyncio.to_thread(alice.live, {**body(0), "name": name})
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        _, table = await _opened_with(pilot, app, 3)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        for index in range(3):
            shown = [line for line in lines if f"_seed_{index}" in line]
            assert len(shown) == 1 and "experiment_wi…" in shown[0]


async def test_trends_of_rows_scrolled_into_view_are_filled(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the newest runs' trends were filled from their series when a project opened:
    below them, a run of many steps drew one glyph, like a run of one step, for good."""
    from tui.screens import project

    monkeypatch.setattr(project, "SEED_SPARKLINES", 2)
    runs = 30

    def post_all() -> None:
        for index in range(runs):
            for step in range(3):
                loss = (3 - step) / (index + 1)
                post = {
                    **body(index),
                    "step": step,
                    "metrics": {"dvclive/metrics.json": {"data": {"loss": loss, "step": step}}},
                    "plots": {
                        "dvclive/plots/metrics/loss.tsv": {"data": [{"step": step, "loss": loss}]}
                    },
                }
                assert alice.live(post).status_code == 200

    await asyncio.to_thread(post_all)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await _opened_with(pilot, app, runs)
        oldest = next(i for i, r in screen.state.rows.items() if r.name == "run-00")
        assert oldest not in table.visible_experiment_ids()  # far below, and not the newest
        await pilot.pause(0.5)
        assert len(str(table.get_cell(str(oldest), "spark")).strip()) == 1
        await pilot.press("end")
        await until(pilot, lambda: oldest in table.visible_experiment_ids())
        # Filled once in view: three values, three glyphs.
        await until(pilot, lambda: len(str(table.get_cell(str(oldest), "spark")).strip()) == 3)

"""Charts with nothing finite to draw: marked, and a log scale does not take the TUI down."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from tui.format import value_text
from tui.plotting import PlotView
from tui.screens.plots import MetricChart


class _One(App[None]):
    def __init__(self, chart: MetricChart) -> None:
        super().__init__()
        self.chart = chart

    def compose(self) -> ComposeResult:
        yield self.chart


@pytest.mark.parametrize("log_scale", [False, True])
async def test_a_run_that_diverged_at_once_is_marked(log_scale: bool) -> None:
    chart = MetricChart("loss", {1: "run"}, PlotView(log_scale=log_scale))
    chart.data = {1: [(0, "nan"), (1, "inf"), (2, "-inf"), (3, -1.0 if log_scale else "nan")]}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())  # plotext built the figure (a log axis with no line failed)
    assert drawn.count("✗") >= 2  # in the title's count, and on the chart
    assert ("(log scale" in chart.title_text) is log_scale  # the axis says what it is
    # Only -1 and non-finite values: nothing to draw on a log axis, and it says so.
    assert ("no value above 0" in chart.title_text) is log_scale


def test_text_values_are_drawn_on_one_line_and_short() -> None:
    assert value_text("resnet\n\x1b[31mred") == "resnet\\x0a\\x1b[31mred"
    long = value_text("x" * 10_000)
    assert len(long) == 200 and long.endswith("…")


async def test_a_title_wider_than_the_chart_is_cut_not_dropped() -> None:
    names = {1: "wider-net-dropout", 2: "baseline-cnn-long", 3: "preempted-a100-x"}
    chart = MetricChart("train/loss", names, PlotView(cursor=2))
    chart.data = {i: [(0, 1.0), (1, 0.5), (2, 0.25 * i)] for i in names}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
    assert len(chart.title_text) > 80  # three runs' values at the step cursor
    # plotext dropped the whole line before: the metric's name and the values with it.
    assert "train/loss   step 2: wider-net-dropout 0.25" in drawn


async def test_a_chart_drawn_before_layout_gets_its_whole_title_once_sized() -> None:
    chart = MetricChart("grad_norm", {1: "run"}, PlotView())
    chart.data = {1: [(0, 1.5), (1, 2.5), (2, "inf")]}
    chart.redraw()  # as the plots screen does when the points arrive before layout
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        drawn = str(chart.render())
    assert "grad_norm   latest inf  min 1.5  max 2.5  1 non-finite" in drawn


@pytest.mark.parametrize("colour", [True, False])
async def test_overlaid_lines_without_colour_differ_by_marker(
    colour: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if colour:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", "1")
    names = {1: "first", 2: "second", 3: "third"}
    chart = MetricChart("loss", names, PlotView())
    chart.data = {i: [(s, 1.0 / (s + i)) for s in range(20)] for i in names}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
    legend = {name: line for line in drawn.splitlines() for name in names.values() if name in line}
    # Without colour the legend tells the lines apart: • and x after plotext's own marker.
    # (the first line's marker is not plotext's own, which reads as the baseline's dashes)
    assert ("•• first" in legend["first"] and "xx second" in legend["second"]) is not colour
    assert ("++ third" in legend["third"]) is not colour


async def test_the_step_cursor_says_where_a_value_is_from() -> None:
    names = {1: "long", 2: "short"}
    chart = MetricChart("acc", names, PlotView(cursor=70))
    chart.data = {1: [(s, s / 100) for s in range(0, 80, 10)], 2: [(s, 0.5) for s in (0, 46)]}
    async with _One(chart).run_test(size=(120, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        # The short run has not reached step 70: its value is from the step it is from.
        assert "step 70: long 0.7 · short 0.5 (at 46)" in chart.title_text
        chart.view = PlotView(cursor=-1)
        chart.redraw()
        assert "step -1: long - · short -" in chart.title_text  # before any point
        chart.view = PlotView(cursor=70, wall_time=True)  # no step line on a time axis
        chart.redraw()
        assert "step" not in chart.title_text


async def test_a_low_chart_of_many_runs_keeps_its_legend_to_their_names() -> None:
    names = {i: f"run-{i}" for i in range(5)}
    chart = MetricChart("acc", names, PlotView())
    chart.data = {i: [(s, s / (10 + i)) for s in range(10)] for i in names}
    async with _One(chart).run_test(size=(80, 12)) as pilot:  # no room to keep lines below
        await pilot.pause()
        drawn = str(chart.render())
    assert "run-4" in drawn and "latest" not in drawn


async def test_no_line_runs_under_the_legend() -> None:
    """Runs converging near the top (accuracy) stay below the legend written over it."""
    names = {1: "first-run", 2: "second-run"}
    chart = MetricChart("acc", names, PlotView())
    chart.data = {
        1: [(s, 1 - 1 / (s + 2)) for s in range(50)],
        2: [(s, 1 - 1.2 / (s + 2)) for s in range(50)],
    }
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render()).splitlines()
    for name in names.values():
        (line,) = [row for row in drawn if f" {name} " in row]
        after = line.split("max ", 1)[1].split(" ", 1)[1].rstrip("│ ")
        assert after == "", line  # nothing drawn right of the legend's text


async def test_room_for_the_legend_never_cuts_raw_values_or_their_marks() -> None:
    """Smoothed lines sit inside the raw ones: the axis spans the raw values, so the faint
    raw series and a -inf's ✗ on the bottom edge stay on the chart."""
    noisy = {
        1: [(s, 1.0 + (3.0 if s % 7 == 0 else 0.0) + (s % 3) * 0.05) for s in range(40)],
        2: [(s, 1.2 + (s % 5) * 0.04) for s in range(40)] + [(40, "-inf"), (41, "nan")],
    }
    drawn = {}
    for smoothing in (0, 3):
        chart = MetricChart("loss", {1: "alpha", 2: "beta"}, PlotView(smoothing=smoothing))
        chart.data = noisy
        async with _One(chart).run_test(size=(80, 24)) as pilot:
            chart.redraw()
            await pilot.pause()
            drawn[smoothing] = str(chart.render())
    marks = {s: sum(line.count("✗") for line in text.splitlines()) for s, text in drawn.items()}
    assert marks[3] == marks[0] >= 3  # the title's count, NaN on top, -inf at the bottom


async def test_huge_and_tiny_values_get_short_tick_labels() -> None:
    # plotext wrote every digit: `7571428571428572182287109586944┤` took 40 % of the chart.
    chart = MetricChart("diverged", {1: "run"}, PlotView())
    chart.data = {1: [(s, 7.5e30 * (s + 1)) for s in range(20)]}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
    labels = [line.split("┤")[0].strip() for line in drawn.splitlines() if "┤" in line]
    assert labels and all("e+3" in label and len(label) <= 10 for label in labels), labels

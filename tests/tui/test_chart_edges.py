"""Charts with nothing finite to draw: marked, and a log scale does not take the TUI down."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from tui.format import value_text
from tui.plotting import PlotView
from tui.widgets.metric_chart import ChartLegend, MetricChart, MetricPanel


class _One(App[None]):
    def __init__(self, chart: MetricChart) -> None:
        super().__init__()
        self.chart = chart

    def compose(self) -> ComposeResult:
        yield self.chart


class _Panel(App[None]):
    """A chart with its legend under it, as the plots screen shows them."""

    def __init__(self, chart: MetricChart) -> None:
        super().__init__()
        self.chart = chart

    def compose(self) -> ComposeResult:
        yield MetricPanel(self.chart)

    def legend(self) -> dict[str, str]:
        """Each legend entry, spaces squeezed, by the run name it holds."""
        lines = self.query_one(ChartLegend).lines
        return {
            part.split()[1]: " ".join(part.split()) for line in lines for part in _entries(line)
        }


def _entries(line: str) -> list[str]:
    """A legend row's entries (each begins with its two-cell key)."""
    parts, current = [], ""
    for word in line.split("  "):
        if word[:2] in {"━━", "••", "xx", "++", "╍╍"} and current:
            parts.append(current.strip())
            current = ""
        current += word + "  "
    return [*parts, current.strip()] if current.strip() else parts


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
    # Lists and dicts as the params file has them, not as Python's repr.
    assert value_text([1, "two", 3.0, None, True]) == '[1, "two", 3.0, null, true]'
    assert value_text({"x": None}) == '{"x": null}'


async def test_a_title_wider_than_the_chart_is_cut_not_dropped() -> None:
    metric = "train/per_class/accuracy_of_a_rather_long_class_name"
    chart = MetricChart(metric, {1: "run"}, PlotView(cursor=2, smoothing=1, log_scale=True))
    chart.data = {1: [(0, 1.0), (1, 0.5), (2, 0.25)]}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
    assert len(chart.title_text) > 80  # the name, the cursor's value, smoothing, log scale
    # plotext dropped the whole line before: the metric's name and the value with it. Now
    # the modes are said shorter, and the name loses its middle, not the figures after it.
    title = next(line for line in drawn.splitlines() if "step 2: 0.25" in line)
    assert "train/per_class/" in title and "class_name   step 2: 0.25  smoothed 0.6  log" in title


async def test_one_runs_figures_stay_in_a_title_whose_metric_name_is_long() -> None:
    metric = "val/very_long_metric_name_" + "component_" * 8 + "end"
    chart = MetricChart(metric, {1: "run"}, PlotView())
    chart.data = {1: [(0, 1.0), (1, 0.5), (2, 0.25)]}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
    assert "val/very_long_metric" in drawn and "…" in drawn
    assert "component_end   latest 0.25  min 0.25  max 1" in drawn


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
    app = _Panel(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        drawn = str(chart.render())
        legend = app.legend()
    # Without colour the legend tells the lines apart: • and x as the lines are drawn.
    # (the first line's marker is not plotext's own, which reads as the baseline's dashes)
    assert ("•• first" in legend["first"] and "xx second" in legend["second"]) is not colour
    assert ("++ third" in legend["third"]) is not colour
    assert ("•" in drawn and "x" in drawn) is not colour
    assert all(legend[name].startswith("━━") for name in names.values()) is colour


async def test_the_step_cursor_says_where_a_value_is_from() -> None:
    names = {1: "long", 2: "short"}
    chart = MetricChart("acc", names, PlotView(cursor=70))
    chart.data = {1: [(s, s / 100) for s in range(0, 80, 10)], 2: [(s, 0.5) for s in (0, 46)]}
    app = _Panel(chart)
    async with app.run_test(size=(120, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        # The short run has not reached step 70: its value is from the step it is from.
        assert chart.title_text == "acc   step 70"
        assert app.legend() == {"long": "━━ long 0.7", "short": "━━ short 0.5 (at 46)"}
        chart.view = PlotView(cursor=-1)
        chart.redraw()
        assert app.legend() == {"long": "━━ long -", "short": "━━ short -"}  # before any
        chart.view = PlotView(cursor=70, wall_time=True)  # no step line on a time axis
        chart.redraw()
        assert "step" not in chart.title_text and "latest 0.7" in app.legend()["long"]


async def test_a_sweep_of_a_dozen_runs_lists_every_run_under_the_chart() -> None:
    """plotext wrote the legend over the chart: past a few runs it did not fit (and was
    dropped) and the step cursor's values were cut from the title."""
    names = {i: f"lr-sweep-{i:02d}" for i in range(12)}
    chart = MetricChart("acc", {**names, 99: "baseline-cnn"}, PlotView(), baseline=99)
    chart.data = {i: [(s, 1 - 1 / (s + 2 + i)) for s in range(50)] for i in [*names, 99]}
    chart.data[3].append((50, "nan"))
    app = _Panel(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        drawn = str(chart.render())
        latest = app.legend()
        rows = len(app.query_one(ChartLegend).lines)
        chart.view.cursor = 20
        chart.redraw()
        await pilot.pause()
        at_cursor = app.legend()
    assert not any(name in drawn for name in names.values())  # nothing written over lines
    assert set(latest) == {*names.values(), "baseline-cnn"}
    assert rows <= 7  # in two columns, each run's latest value (min and max: too long)
    assert latest["lr-sweep-03"].endswith("latest nan ✗1")  # non-finite, counted
    assert latest["baseline-cnn"] == "╍╍ baseline-cnn latest 0.9933"  # dashed, as drawn
    assert at_cursor["lr-sweep-00"] == "━━ lr-sweep-00 0.9545"  # 1 - 1/22: at step 20
    assert chart.title_text == "acc   step 20"


async def test_a_few_runs_get_latest_min_and_max_and_no_line_runs_under_a_legend() -> None:
    """Runs converging near the top (accuracy): nothing is written over the lines."""
    names = {1: "first-run", 2: "second-run", 3: "base"}
    chart = MetricChart("acc", names, PlotView(), baseline=3)
    chart.data = {
        1: [(s, 1 - 1 / (s + 2)) for s in range(50)],
        2: [(s, 1 - 1.2 / (s + 2)) for s in range(50)],
        3: [(s, 0.5) for s in range(50)],
    }
    app = _Panel(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        drawn = str(chart.render())
        legend = app.legend()
    assert "first-run" not in drawn and "second-run" not in drawn
    assert legend["first-run"] == "━━ first-run latest 0.9804 min 0.5 max 0.9804"
    assert legend["base"] == "╍╍ base latest 0.5 min 0.5 max 0.5 (baseline)"


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
    assert marks[3] == marks[0] >= 2  # NaN on top, -inf at the bottom


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


async def test_a_log_scale_chart_is_drawn_again_and_again() -> None:
    """plotext's build took the log of the logs the second time: the TUI died with a math
    domain error whenever anything asked a log-scale chart for its picture again."""
    chart = MetricChart("loss", {1: "run"}, PlotView(log_scale=True))
    chart.data = {1: [(0, 1.0), (1, 0.5), (2, 0.25)]}
    app = _One(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        first = str(chart.render())
        assert str(chart.render()) == first  # asked again, as Textual does on a refresh
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        wider = str(chart.render())
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause()
        assert str(chart.render())
    assert "(log scale)" in first and len(wider.splitlines()[0]) == 100 > len(first.splitlines()[0])


async def test_values_too_large_to_draw_are_marked_and_told() -> None:
    """DVCLive logs a float's largest values as they are; plotext scaled them by 1e8 to inf
    and the TUI died (here, over SSH too) when their plots opened."""
    chart = MetricChart("big", {1: "run"}, PlotView())
    chart.data = {1: [(0, 1.0), (1, 1e308), (2, 1.79e308), (3, -1.5e308), (4, 2.0)]}
    async with _One(chart).run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
    assert "3 too large to draw ✗" in chart.title_text and "cannot be drawn" not in drawn
    assert sum(line.count("✗") for line in drawn.splitlines()[1:]) == 3  # top, top, bottom


async def test_a_chart_plotext_cannot_draw_says_so_in_its_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual_plotext import PlotextPlot

    def fail(self: PlotextPlot) -> None:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(PlotextPlot, "render", fail)
    chart = MetricChart("odd", {1: "run"}, PlotView())
    chart.data = {1: [(0, 1.0), (1, 2.0)]}
    app = _One(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        chart.redraw()
        await pilot.pause()
        drawn = str(chart.render())
        assert app.is_running  # one chart, not the whole TUI
    assert drawn.startswith("odd: this chart cannot be drawn (cannot convert float infinity")


async def test_the_baselines_undrawable_values_have_a_mark_of_their_own() -> None:
    """A baseline's NaN drawn as a red ✗ read as the chosen run's: it is a grey ✕, and its
    legend counts it as such."""
    chart = MetricChart("loss", {1: "run", 2: "base"}, PlotView(), baseline=2)
    chart.data = {
        1: [(s, 1.0 / (s + 1)) for s in range(20)],
        2: [(s, 0.5) for s in range(20)] + [(20, "nan"), (21, "inf")],
    }
    app = _Panel(chart)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        drawn = str(chart.render())
        legend = app.legend()
        chart.data[1].append((22, "nan"))  # beside, not on, the baseline's
        chart.redraw()
        await pilot.pause()
        both = str(chart.render())
    assert "✗" not in drawn and drawn.count("✕") == 2  # the baseline's two, none of the run's
    assert legend["base"].endswith("2 non-finite ✕ (baseline)")
    assert "✗" not in legend["run"]
    assert both.count("✗") == 1 and both.count("✕") == 2

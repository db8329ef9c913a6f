"""One metric's chart: a line per experiment, and the legend under it that names them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tui.format import cell_len, head_cut, middle_cut, value_text
from tui.plotting import (
    PlotView,
    cursor_text,
    dashes,
    drawable,
    duration_text,
    nonfinite,
    smooth,
    thin,
    too_large,
)
from tui.sanitize import plain
from tui.theme import no_color

Series = dict[int, list[tuple[int, Any]]]

LINE_COLOURS = (
    (0, 130, 200),
    (60, 180, 75),
    (230, 25, 75),
    (255, 225, 25),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
)
"""Each line's colour, in the order drawn (textual-plotext's own sequence, given explicitly
so that the legend under the chart shows the same one)."""

NO_COLOR_MARKERS = ("•", "x", "+", "o", "*", "#", "=", "hd")
"""With ``NO_COLOR`` overlaid lines differed only by shade: each gets a marker of its own
(the legend shows it beside the experiment's name). ``hd``, plotext's line, comes last: it
looks like the baseline's dashes."""


def marker_of(index: int) -> str | None:
    """The marker of the ``index``-th line drawn (plotext's own, in colour)."""
    return NO_COLOR_MARKERS[index % len(NO_COLOR_MARKERS)] if no_color() else None


MARK = "✗"
"""Where a run's line has a value it cannot draw (NaN, ±inf, too large), in red."""
BASELINE_MARK = "✕"
"""The same for the baseline, in grey: its marks are not the runs' own."""


def summary(points: list[tuple[int, Any]], brief: bool = False, mark: str = MARK) -> str:
    """``latest … min … max …`` of one line (``brief``: the latest only); ``mark``: the
    glyph its undrawable values have on the chart."""
    if not points:
        return "no points"
    _, values = drawable(points, log_scale=False)
    latest = value_text(points[-1][1])
    marks, huge = nonfinite(points), too_large(points)
    odd = f"  {len(marks)} non-finite {mark}" if marks else ""
    odd += f"  {len(huge)} too large to draw {mark}" if huge else ""
    if brief:
        return f"latest {latest}" + (f" {mark}{len(marks) + len(huge)}" if marks or huge else "")
    if not values:
        return f"latest {latest}{odd}"
    return f"latest {latest}  min {value_text(min(values))}  max {value_text(max(values))}{odd}"


@dataclass(frozen=True)
class LegendEntry:
    """One experiment in a chart's legend: its line's look, its name and its values."""

    key: str
    """Two cells that look like the line (``━━`` in its colour, ``••``, ``╍╍``)."""
    colour: tuple[int, int, int] | None
    name: str
    values: str
    brief: str
    """The values in short, for a legend too long in full (the latest value only)."""


def legend_layout(widths: list[int], room: int) -> list[list[int]]:
    """The entries (by index) of each column, down the columns first as ``ls`` lists them,
    in as many columns (two cells apart, each as wide as its widest) as fit in ``room``."""
    # No more columns than the narrowest entries could make (a sweep of 400 runs tried
    # 400 layouts of 400 entries before).
    most = min(len(widths), (room + 2) // (min(widths, default=0) + 2))
    for columns in range(most, 1, -1):
        rows = math.ceil(len(widths) / columns)
        layout = [list(range(c * rows, min(len(widths), (c + 1) * rows))) for c in range(columns)]
        layout = [column for column in layout if column]
        if sum(max(widths[i] for i in column) for column in layout) + 2 * (len(layout) - 1) <= room:
            return layout
    return [list(range(len(widths)))]


LEGEND_ROWS = 4
"""Rows a legend may take with each run's latest, min and max; past them, latest only."""


class ChartLegend(Static):
    """The names of a chart's lines and their values (the latest, or at the step cursor),
    under the chart in as many columns as fit: written over the chart by plotext, a legend
    covered the lines where runs differ most, and past a few runs it did not fit at all."""

    DEFAULT_CSS = """
    ChartLegend {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self) -> None:
        super().__init__("", markup=False)
        self.entries: list[LegendEntry] = []

    def show(self, entries: list[LegendEntry]) -> None:
        self.entries = entries
        self.display = bool(entries)
        self._lay_out()

    def on_resize(self) -> None:
        self._lay_out()

    @property
    def lines(self) -> list[str]:
        """The legend as plain text, a line a row (for tests and the curious)."""
        return self.render_text().plain.splitlines()

    def render_text(self) -> Text:
        if not self.entries:
            return Text()
        room = max(20, self.size.width - 2)
        # Names padded to the longest (unless that is very long): values start in line.
        longest = max(plain(entry.name).cell_len for entry in self.entries)
        pad = longest if longest <= room // 3 else 0
        texts = [self._entry_text(entry, entry.values, room, pad) for entry in self.entries]
        layout = legend_layout([t.cell_len for t in texts], room)
        if len(layout[0]) > LEGEND_ROWS:  # a sweep's dozen runs
            texts = [self._entry_text(entry, entry.brief, room, pad) for entry in self.entries]
            layout = legend_layout([t.cell_len for t in texts], room)
        widths = [max(texts[i].cell_len for i in column) for column in layout]
        out = Text()
        for row in range(len(layout[0])):
            if row:
                out.append("\n")
            cells = [(c, column[row]) for c, column in enumerate(layout) if row < len(column)]
            for c, index in cells:
                if c:
                    out.append("  ")
                out.append_text(texts[index])
                if c + 1 < len(cells):
                    out.append(" " * (widths[c] - texts[index].cell_len))
        return out

    def _lay_out(self) -> None:
        self.update(self.render_text())

    @staticmethod
    def _entry_text(entry: LegendEntry, values: str, room: int, pad: int) -> Text:
        style = Style(color=f"rgb{entry.colour}") if entry.colour else Style()
        text = Text(entry.key, style=style)
        text.append(" ")
        name = plain(entry.name)
        text.append_text(name)
        text.append(" " * (pad - name.cell_len) + f"  {values}")
        if text.cell_len > room:
            text.truncate(room - 1)
            text.append("…")
        return text


class MetricChart(PlotextPlot):
    """One metric, one line per experiment, drawn as the screen's ``PlotView`` says."""

    def __init__(
        self, metric: str, names: dict[int, str], view: PlotView, baseline: int | None = None
    ) -> None:
        super().__init__(id=None)
        self.metric = metric
        self.names = names
        self.view = view
        self.baseline = baseline
        """The experiment drawn dashed (the user's baseline of the project)."""
        self.data: Series = {}
        self.times: dict[int, dict[int, float]] = {}
        """When each step arrived, by experiment (for the wall-time axis)."""
        self.drawn: dict[int, tuple[list[int], list[float]]] = {}
        """The lines as last drawn (smoothed), by experiment."""
        self.y_range: tuple[float, float] | None = None
        """The y axis's extent as last drawn (None: plotext's own)."""
        self.title_text = metric
        """The title as last drawn."""
        self.legend: list[LegendEntry] = []
        """The legend as last drawn (empty with a single experiment: its title says it)."""
        self._built: tuple[Any, Any] | None = None
        """(size and theme, the text) plotext last built from the figure as drawn."""

    def on_unmount(self) -> None:
        # PlotextPlot subscribes every plot to the app's theme signal on mount and never
        # unsubscribes: the callback refers to the plot, so the signal (which lives as long
        # as the app) kept every chart ever drawn, with its plotext figure.
        self.app.theme_changed_signal.unsubscribe(self)

    def on_resize(self) -> None:
        # The title is cut to the chart's width: a chart drawn before layout (size 0) kept
        # a 20-column title for good.
        self.redraw()

    def steps(self) -> list[int]:
        """Every step any line has."""
        return sorted({step for points in self.data.values() for step, _ in points})

    def _x(
        self, experiment_id: int, steps: list[int], values: list[float], start: float
    ) -> tuple[list[float], list[float]]:
        """The x positions of a line: steps, or seconds since ``start`` on a wall-time axis."""
        if not self.view.wall_time:
            return [float(step) for step in steps], values
        times = self.times.get(experiment_id, {})
        kept = [(times[s] - start, v) for s, v in zip(steps, values, strict=True) if s in times]
        return [t for t, _ in kept], [v for _, v in kept]

    def _mark_nonfinite(self, start: float) -> None:
        """NaN and +inf as a red ✗ on the top edge of the lines, -inf on the bottom edge
        (SPEC §2: shown as such, not dropped); values too large to draw as ±inf are. The
        baseline's are a grey ✕ (as red ✗ they read as a chosen run's)."""
        # The edges of the raw values (smoothing pulls the lines inwards); a chart with
        # nothing finite to draw (a run that diverged at once) marks them on 0..1.
        ys = [v for points in self.data.values() for v in drawable(points, self.view.log_scale)[1]]
        top, bottom = (max(ys), min(ys)) if ys else (1.0, 0.0 if not self.view.log_scale else 1.0)
        for experiment_id, points in self.data.items():
            marks = nonfinite(points) + too_large(points)
            if not marks:
                continue
            at = [top if spelled not in ("-inf", "-") else bottom for _, spelled in marks]
            xs, ys_at = self._x(experiment_id, [s for s, _ in marks], at, start)
            if not xs:
                continue
            if experiment_id == self.baseline:
                self.plt.scatter(xs, ys_at, marker=BASELINE_MARK, color="gray")
            else:
                self.plt.scatter(xs, ys_at, marker=MARK, color="red")

    def _compact_y_ticks(self) -> None:
        """Ticks spelled as the values are (``7.571e+30``, ``2.2e-09``) where plotext would
        write every digit (``7571428571428572182287109586944``: 40 % of the chart's width)."""
        ys = [y for _, values in self.drawn.values() for y in values]
        ys += [v for points in self.data.values() for v in drawable(points, False)[1]]
        if not ys:
            return
        low, high = self.y_range = (min(ys), max(ys))
        largest = max(abs(low), abs(high))
        if 1e-3 <= largest < 1e5 or largest == 0 or high <= low:
            return  # plotext's own ticks read well
        ticks = [low + (high - low) * i / 4 for i in range(5)]
        self.plt.yticks(ticks, [value_text(t) for t in ticks])

    def _cursor_values(self, experiment_id: int, points: list[tuple[int, Any]]) -> str:
        view = self.view
        assert view.cursor is not None
        if view.exact_at != view.cursor or (experiment_id, self.metric) not in view.exact:
            return cursor_text(points, view.cursor, False)
        return cursor_text(points, view.cursor, view.exact[experiment_id, self.metric])

    def _legend_entry(self, index: int, experiment_id: int, colour: Any) -> LegendEntry:
        points = self.data[experiment_id]
        view = self.view
        at_cursor = view.cursor is not None and not view.wall_time
        mark = BASELINE_MARK if experiment_id == self.baseline else MARK
        if at_cursor:
            values = brief = self._cursor_values(experiment_id, points)
        else:
            values, brief = summary(points, mark=mark), summary(points, brief=True, mark=mark)
        name = self.names[experiment_id]
        if experiment_id == self.baseline:
            return LegendEntry("╍╍", None, name, f"{values}  (baseline)", brief)
        marker = marker_of(index)
        key = "━━" if marker is None or marker == "hd" else marker * 2
        return LegendEntry(key, None if no_color() else colour, name, values, brief)

    def render(self) -> Any:
        # plotext's build changes the figure it builds: a second build of a log-scale chart
        # took the logarithm of the logarithms (a math domain error that took the TUI down
        # when anything asked for the chart again). One build per drawing, then.
        key = (self.size, self.app.theme)
        if self._built is not None:
            if self._built[0] == key:
                return self._built[1]
            self._draw()
        try:
            text = super().render()
        except Exception as exc:  # plotext's own limits: one chart, not the whole TUI
            self.log.error(f"plotext could not draw {self.metric!r}: {exc!r}")
            text = plain(
                f"{self.metric}: this chart cannot be drawn ({exc}); its values are listed"
                " under it (or in its title)."
            )
        self._built = (key, text)
        return text

    def redraw(self) -> None:
        """Draw the lines again from ``data``."""
        self._draw()
        self.refresh()

    def _draw(self) -> None:
        self._built = None
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        view = self.view
        single = len(self.names) == 1
        xs_seen: list[float] = []
        for gone in [e for e in self.data if e not in self.names]:  # deleted meanwhile
            del self.data[gone]
            self.times.pop(gone, None)
        start = min((min(t.values()) for t in self.times.values() if t), default=0.0)
        self.drawn = {}
        self.y_range = None
        legend = []
        for index, (experiment_id, points) in enumerate(self.data.items()):
            colour = LINE_COLOURS[index % len(LINE_COLOURS)]
            if not single:  # (listed even with nothing to draw: its values say why)
                legend.append(self._legend_entry(index, experiment_id, colour))
            steps, values = drawable(points, view.log_scale)
            xs, raw = self._x(experiment_id, steps, values, start)
            if not xs:
                continue
            ys = smooth(raw, view.weight) if view.weight else raw
            self.drawn[experiment_id] = (steps, ys)
            limit = max(100, 4 * self.size.width)
            raw_xs, raw = thin(xs, raw, limit)
            xs, ys = thin(xs, ys, limit)
            xs_seen.extend(xs)
            if experiment_id == self.baseline:
                for dash_x, dash_y in dashes(xs, ys):
                    plt.plot(dash_x, dash_y, color="white")
            else:
                if view.weight:
                    plt.plot(raw_xs, raw, color="gray")  # the raw series, faint behind
                plt.plot(xs, ys, marker=marker_of(index), color=colour)
        self._mark_nonfinite(start)
        if view.log_scale and self.drawn:  # plotext fails on a log axis with no line
            plt.yscale("log")
        if not view.log_scale:
            self._compact_y_ticks()
        title = self.metric
        if view.cursor is not None and not view.wall_time:  # (no step line on a time axis)
            if xs_seen and min(xs_seen) <= view.cursor <= max(xs_seen):
                # (outside, the line widened the axis: a chart whose runs ended earlier
                # was squeezed into its left tenth, its tick labels lost)
                plt.vline(view.cursor, "white")
            title += f"   step {view.cursor}"
            if single and self.data:
                experiment_id, points = next(iter(self.data.items()))
                title += ": " + self._cursor_values(experiment_id, points)
        elif single and self.data:
            title += "   " + summary(next(iter(self.data.values())))
        modes, short = "", ""
        if view.weight:
            modes += f"   (smoothed {view.weight:g})"
            short += f"  smoothed {view.weight:g}"
        if view.log_scale:
            modes += "   (log scale)" if self.drawn else "   (log scale: no value above 0)"
            short += "  log" if self.drawn else "  log: no value above 0"
        self.title_text = title + modes
        plt.title(_fitted(self.metric, title[len(self.metric) :], modes, short, self.size.width))
        plt.xlabel("time since the first point" if view.wall_time else "step")
        if xs_seen:
            low, high = min(xs_seen), max(xs_seen)
            ticks = sorted({low + (high - low) * i / 4 for i in range(5)})
            if view.wall_time:
                plt.xticks(ticks, [duration_text(t) for t in ticks])
            else:
                whole = sorted({round(t) for t in ticks})
                plt.xticks([float(t) for t in whole], [str(t) for t in whole])
        self.legend = legend
        if isinstance(self.parent, MetricPanel):
            for box in self.parent.query(ChartLegend):  # (none before the panel composed)
                box.show(legend)


def _fitted(metric: str, figures: str, modes: str, short: str, width: int) -> str:
    """A chart's title in ``width`` (plotext drops a wider one altogether, the metric's
    name and the cursor's values with it): the modes said shorter first, then a long name
    cut in its middle (cut at the end, the title lost the latest, min and max figures)."""
    room = max(20, width - 4)
    for title in (metric + figures + modes, metric + figures + short):
        if cell_len(title) <= room:
            return title
    if room - cell_len(figures + short) >= 16:
        return middle_cut(metric, room - cell_len(figures + short)) + figures + short
    return head_cut(metric + figures + short, room)


class MetricPanel(Vertical):
    """A chart and its legend, kept together (the plots screen orders them by metric)."""

    DEFAULT_CSS = """
    MetricPanel {
        height: auto;
    }
    """

    def __init__(self, chart: MetricChart) -> None:
        super().__init__()
        self.chart = chart

    def compose(self) -> ComposeResult:
        yield self.chart
        yield ChartLegend()

    def on_mount(self) -> None:
        self.chart.redraw()  # (points that arrived before the legend was there)

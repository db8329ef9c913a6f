"""Live charts: one per metric, a line per experiment, plus the images."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Static
from textual_plotext import PlotextPlot

from tui import clock
from tui import images as pictures
from tui.client import ApiError
from tui.format import head_cut, value_text
from tui.graphics import ImageWidget
from tui.messages import ExperimentDeleted, PointsArrived
from tui.plotting import (
    PlotView,
    cursor_text,
    dashes,
    drawable,
    duration_text,
    nonfinite,
    smooth,
    thin,
)
from tui.sanitize import plain
from tui.screens.base import LiveScreen
from tui.theme import no_color
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar

Series = dict[int, list[tuple[int, Any]]]


def _ascending(points: list[tuple[int, Any]]) -> bool:
    return all(a[0] < b[0] for a, b in itertools.pairwise(points))


def summary(points: list[tuple[int, Any]]) -> str:
    """``latest … min … max …`` of one line."""
    if not points:
        return "no points"
    _, values = drawable(points, log_scale=False)
    latest = value_text(points[-1][1])
    marks = nonfinite(points)
    odd = f"  {len(marks)} non-finite ✗" if marks else ""
    if not values:
        return f"latest {latest}{odd}"
    return f"latest {latest}  min {value_text(min(values))}  max {value_text(max(values))}{odd}"


DRAW_EVERY = 0.25
"""Seconds between redraws of the charts that live points changed."""
CURSOR_READ_AFTER = 0.15
"""Seconds the step cursor rests before its exact values are read from the server."""


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
        """The title as last drawn (with the cursor's values)."""

    def on_unmount(self) -> None:
        # PlotextPlot subscribes every plot to the app's theme signal on mount and never
        # unsubscribes: the callback refers to the plot, so the signal (which lives as long
        # as the app) kept every chart ever drawn, with its plotext figure.
        self.app.theme_changed_signal.unsubscribe(self)

    def on_resize(self) -> None:
        # The title is cut to the chart's width and the legend's room depends on its
        # height: a chart drawn before layout (size 0) kept a 20-column title for good.
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
        (SPEC §2: shown as such, not dropped)."""
        # The edges of the raw values (smoothing pulls the lines inwards); a chart with
        # nothing finite to draw (a run that diverged at once) marks them on 0..1.
        ys = [v for points in self.data.values() for v in drawable(points, self.view.log_scale)[1]]
        top, bottom = (max(ys), min(ys)) if ys else (1.0, 0.0 if not self.view.log_scale else 1.0)
        for experiment_id, points in self.data.items():
            marks = nonfinite(points)
            if not marks:
                continue
            at = [top if spelled != "-inf" else bottom for _, spelled in marks]
            xs, ys_at = self._x(experiment_id, [s for s, _ in marks], at, start)
            if xs:
                self.plt.scatter(xs, ys_at, marker="✗", color="red")

    def _leave_room_for_legend(self, lines: int) -> None:
        """Raise the top of the y axis so that no line runs under the legend.

        plotext writes the legend (a line per experiment) over the top rows of the chart,
        where runs converge and differ most (accuracy near 1.0): the data keeps below it.
        """
        # The raw values too: smoothing pulls the lines inwards, and the raw series behind
        # them and the ✗ of a non-finite value sit at the raw edges.
        ys = [y for _, values in self.drawn.values() for y in values]
        ys += [v for points in self.data.values() for v in drawable(points, False)[1]]
        rows = self.size.height - 5  # the title, the frame, the ticks and the x label
        if not ys or lines == 0 or rows < 3 * lines:
            return  # too low a chart to give up rows: the legend covers what it covers
        low, high = min(ys), max(ys)
        span = (high - low) or abs(high) or 1.0
        self.plt.ylim(low, low + span * rows / (rows - lines - 1))
        self.y_range = (low, low + span * rows / (rows - lines - 1))

    def _compact_y_ticks(self) -> None:
        """Ticks spelled as the values are (``7.571e+30``, ``2.2e-09``) where plotext would
        write every digit (``7571428571428572182287109586944``: 40 % of the chart's width)."""
        if self.y_range is None:
            ys = [y for _, values in self.drawn.values() for y in values]
            ys += [v for points in self.data.values() for v in drawable(points, False)[1]]
            if not ys:
                return
            self.y_range = (min(ys), max(ys))
        low, high = self.y_range
        largest = max(abs(low), abs(high))
        if 1e-3 <= largest < 1e5 or largest == 0 or high <= low:
            return  # plotext's own ticks read well
        ticks = [low + (high - low) * i / 4 for i in range(5)]
        self.plt.yticks(ticks, [value_text(t) for t in ticks])

    def redraw(self) -> None:
        """Draw the lines again from ``data``."""
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
        # Too low a chart to keep the lines below the legend (``_leave_room_for_legend``):
        # the legend says names only, so that it covers less of them (the values are in
        # the step cursor's title, ← and →).
        names_only = len(self.data) > 2 and self.size.height - 5 < 3 * len(self.data)
        for index, (experiment_id, points) in enumerate(self.data.items()):
            steps, values = drawable(points, view.log_scale)
            if not steps:
                continue
            label = (
                None
                if single
                else self.names[experiment_id]
                if names_only
                else f"{self.names[experiment_id]}  {summary(points)}"
            )
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
                for dash, (dash_x, dash_y) in enumerate(dashes(xs, ys)):
                    plt.plot(
                        dash_x,
                        dash_y,
                        color="white",
                        label=f"baseline: {label or self.names[experiment_id]}"
                        if dash == 0
                        else None,
                    )
            else:
                if view.weight:
                    plt.plot(raw_xs, raw, color="gray")  # the raw series, faint behind
                plt.plot(xs, ys, label=label, marker=marker_of(index))
        self._mark_nonfinite(start)
        if view.log_scale and self.drawn:  # plotext fails on a log axis with no line
            plt.yscale("log")
        elif not single:
            self._leave_room_for_legend(len(self.drawn))
        if not view.log_scale:
            self._compact_y_ticks()
        title = self.metric
        if view.cursor is not None and not view.wall_time:  # (no step line on a time axis)
            if xs_seen and min(xs_seen) <= view.cursor <= max(xs_seen):
                # (outside, the line widened the axis: a chart whose runs ended earlier
                # was squeezed into its left tenth, its tick labels lost)
                plt.vline(view.cursor, "white")
            known = view.exact_at == view.cursor
            at = [
                f"{'' if single else self.names[e] + ' '}"
                + cursor_text(
                    p, view.cursor, view.exact.get((e, self.metric), False) if known else False
                )
                for e, p in self.data.items()
            ]
            title += f"   step {view.cursor}: " + " · ".join(at)
        elif single and self.data:
            title += "   " + summary(next(iter(self.data.values())))
        if view.weight:
            title += f"   (smoothed {view.weight:g})"
        if view.log_scale:
            title += "   (log scale)" if self.drawn else "   (log scale: no value above 0)"
        self.title_text = title
        # plotext drops a title wider than the chart altogether (the metric's name and the
        # step cursor's values with it): cut it to fit instead.
        room = max(20, self.size.width - 4)
        plt.title(head_cut(title, room))
        plt.xlabel("time since the first point" if view.wall_time else "step")
        if xs_seen:
            low, high = min(xs_seen), max(xs_seen)
            ticks = sorted({low + (high - low) * i / 4 for i in range(5)})
            if view.wall_time:
                plt.xticks(ticks, [duration_text(t) for t in ticks])
            else:
                whole = sorted({round(t) for t in ticks})
                plt.xticks([float(t) for t in whole], [str(t) for t in whole])
        self.refresh()


NO_COLOR_MARKERS = ("•", "x", "+", "o", "*", "#", "=", "hd")
"""(``hd``, plotext's line, last: in the legend it looks like the baseline's dashes.)"""
"""With ``NO_COLOR`` overlaid lines differed only by shade: each gets a marker of its own
(the legend shows it beside the experiment's name)."""


def marker_of(index: int) -> str | None:
    """The marker of the ``index``-th line drawn (plotext's own, in colour)."""
    return NO_COLOR_MARKERS[index % len(NO_COLOR_MARKERS)] if no_color() else None


class PlotsScreen(LiveScreen):
    """Charts of the chosen experiments, extended live by the stream."""

    BINDINGS = [
        Binding("q,escape", "app.pop_screen", "Back", tooltip="back"),
        Binding("r", "reload", "Refetch", tooltip="fetch every series again"),
        Binding("plus,equals_sign", "smooth(1)", "Smooth", key_display="+", tooltip="smooth more"),
        Binding("minus", "smooth(-1)", "Less", key_display="-", tooltip="smooth less"),
        Binding("L", "log_scale", "Log", tooltip="log scale on or off"),
        Binding("x", "wall_time", "Step/time", tooltip="x axis: step, or when each step arrived"),
        Binding(
            "left",
            "step(-1)",
            "Step",
            key_display="←→",
            tooltip="step cursor: every line's value at that step (← earlier, → later)",
        ),
        Binding("right", "step(1)", show=False),  # described with ← (help: one row for both)
        Binding("j", "scroll(3)", show=False, tooltip="scroll down"),
        Binding("k", "scroll(-3)", show=False, tooltip="scroll up"),
    ]

    def __init__(
        self, names: dict[int, str], events_path: str, baseline: tuple[int, str] | None = None
    ) -> None:
        super().__init__()
        self.names = dict(names)
        self.asked = set(names)
        self.baseline = baseline[0] if baseline else None
        if baseline is not None:
            self.names.setdefault(*baseline)  # drawn dashed, beside the lines asked for
        self.events_path = events_path
        self.charts: dict[str, MetricChart] = {}
        self._stale: set[MetricChart] = set()
        """Charts with points not drawn yet: drawn together, at most every ``DRAW_EVERY``."""
        self.images: dict[tuple[int, str], Vertical] = {}
        """Each image shown (its title and picture), by (experiment, path)."""
        self.images_shown = False
        self.images_pending: dict[tuple[int, str], int | None] = {}
        """Images stored since they were fetched, to fetch again: (experiment, path) → step."""
        self.images_draining = False
        self.view = PlotView()
        self.place = "plots: " + ", ".join(names.values())

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with VerticalScroll(), Vertical(id="images"):
            yield Static("Loading…", id="images-note")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.load()
        self.set_interval(DRAW_EVERY, self._draw_stale)

    def _draw_stale(self) -> None:
        stale, self._stale = self._stale, set()
        for chart in stale:
            if chart.is_attached:
                chart.redraw()

    def reconnected(self) -> None:
        self.load()  # a failed load, or points missed while the server was away

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Fetch every series, downsampled to about the chart width."""
        api = studio(self).api
        width = max(100, self.size.width * 2)
        image_lines = []
        self.images_shown = False
        try:
            for experiment_id, name in list(self.names.items()):
                detail = await api.experiment(experiment_id)
                series = await api.timed_series(experiment_id, max_points=width)
                if experiment_id not in self.names:  # deleted meanwhile (``deleted``)
                    continue
                for metric, points in series.items():
                    chart = self._chart(metric)
                    chart.data[experiment_id] = [(s, v) for s, v, _ in points]
                    chart.times[experiment_id] = {s: t for s, _, t in points if t is not None}
                if experiment_id not in self.asked:  # the baseline's images are not asked for
                    continue
                for image in detail.images:
                    image_lines.append((experiment_id, name, image.path, image.step))
        except ApiError as exc:
            studio(self).report(exc)
            if not self.charts and not self.images:  # nothing shown yet: say why
                self.query_one("#images-note", Static).update(
                    plain(
                        f"Could not load the plots: {exc.detail}\n"
                        "They load once the server is back; r tries again now."
                    )
                )
            return
        for chart in self.charts.values():
            chart.redraw()
        await self._show_images(image_lines)
        self.images_shown = True
        self._drain_images()  # images stored while it loaded

    async def _show_images(self, images: list[tuple[int, str, str, int | None]]) -> None:
        """Each image under its title, or one line saying why it cannot be drawn."""
        box = self.query_one("#images", Vertical)
        note = self.query_one("#images-note", Static)
        await box.remove_children(".image-item")
        self.images.clear()
        note.update("" if images else "No images." if self.charts else "No series or images.")
        note.display = not images
        for experiment_id, name, path, step in images:
            await self._mount_image(experiment_id, name, path, step)

    async def _mount_image(
        self,
        experiment_id: int,
        name: str,
        path: str,
        step: int | None,
        picture: Widget | None = None,
    ) -> None:
        """An image and its title, kept together so that either can be replaced alone."""
        item = Vertical(
            Label(self._image_title(name, path, step), classes="image-title"),
            picture or await self._picture(experiment_id, path),
            classes="image-item",
        )
        self.images[experiment_id, path] = item
        await self.query_one("#images", Vertical).mount(item)

    @staticmethod
    def _image_title(name: str, path: str, step: int | None) -> Text:
        return plain(f"{name}  {path}  (step {step})")

    async def _picture(self, experiment_id: int, path: str) -> Widget:
        """The image drawn, or one line saying why it cannot be."""
        try:
            data = await studio(self).api.image(experiment_id, path)
            picture = await pictures.load(data)
        except (ApiError, pictures.UndrawableImage) as exc:
            return Static(pictures.placeholder(str(exc)), classes="image-missing")
        return ImageWidget(picture, classes="image")

    def _refresh_image(self, experiment_id: int, path: str, step: int | None) -> None:
        """Fetch an image stored just now (once the screen shows its images)."""
        # Waiting images are kept by path, the newest step winning: a run logging an image
        # every step never queues fetches of pictures already replaced.
        self.images_pending[experiment_id, path] = step
        self._drain_images()

    def _drain_images(self) -> None:
        if self.images_shown and self.images_pending and not self.images_draining:
            self.images_draining = True
            self.run_worker(self._replace_waiting(), group="images", exit_on_error=False)

    async def _replace_waiting(self) -> None:
        """Replace the waiting images one at a time (never two workers on one box)."""
        try:
            while self.images_shown and self.images_pending:
                (experiment_id, path), step = next(iter(self.images_pending.items()))
                del self.images_pending[experiment_id, path]
                await self._replace_image(experiment_id, path, step)
        finally:
            self.images_draining = False

    async def _replace_image(self, experiment_id: int, path: str, step: int | None) -> None:
        """Show the image stored just now in place of the one shown (or after the others)."""
        picture = await self._picture(experiment_id, path)
        if not self.images_shown:  # a reload began meanwhile: it shows the latest
            self.images_pending[experiment_id, path] = step
            return
        name = self.names.get(experiment_id)
        if name is None:  # deleted while its picture was fetched
            return
        item = self.images.get((experiment_id, path))
        if item is None or not item.is_attached:
            self.query_one("#images-note", Static).display = False
            await self._mount_image(experiment_id, name, path, step, picture)
            return
        item.query_one(".image-title", Label).update(self._image_title(name, path, step))
        old = list(item.query(".image, .image-missing"))
        await item.mount(picture)
        await item.remove_children(old)

    def _chart(self, metric: str) -> MetricChart:
        chart = self.charts.get(metric)
        if chart is None:
            chart = MetricChart(metric, self.names, self.view, self.baseline)
            self.charts[metric] = chart
            scroll = self.query_one(VerticalScroll)
            names = sorted(self.charts)
            position = names.index(metric)
            if position + 1 < len(names):
                scroll.mount(chart, before=self.charts[names[position + 1]])
            else:
                scroll.mount(chart, before=self.query_one("#images"))
        return chart

    @on(PointsArrived)
    def points(self, message: PointsArrived) -> None:
        if message.experiment_id not in self.names:
            return
        if message.images and message.experiment_id in self.asked:
            for path, step in message.images.items():
                self._refresh_image(message.experiment_id, path, step)
        now = clock.now()
        for metric, points in message.series.items():
            chart = self._chart(metric)
            times = chart.times.setdefault(message.experiment_id, {})
            for step, _ in points:
                times.setdefault(step, now)
            line = chart.data.setdefault(message.experiment_id, [])
            if not line or (points and points[0][0] > line[-1][0] and _ascending(points)):
                line.extend(points)  # a run's next steps: the usual case, no scan
            else:
                known = {step: i for i, (step, _) in enumerate(line)}
                for step, value in points:
                    if step in known:
                        line[known[step]] = (step, value)
                    else:
                        line.append((step, value))
                line.sort(key=lambda p: p[0])
            # Drawn with the others within DRAW_EVERY: a run logging 50 steps a second
            # redrew every chart 50 times a second, and keys waited seconds behind it.
            self._stale.add(chart)

    @on(ExperimentDeleted)
    async def deleted(self, message: ExperimentDeleted) -> None:
        """A run shown here was deleted (elsewhere): its lines and images go too."""
        gone = message.experiment_id
        if gone not in self.names:
            return
        name = self.names.pop(gone)  # (the charts share the dict: their legends follow)
        self.asked.discard(gone)
        if self.baseline == gone:
            self.baseline = None
        for metric, chart in list(self.charts.items()):
            chart.data.pop(gone, None)
            chart.times.pop(gone, None)
            if chart.baseline == gone:
                chart.baseline = None
            if chart.data:
                chart.redraw()
            else:
                del self.charts[metric]
                await chart.remove()
        for key in [k for k in self.images if k[0] == gone]:
            await self.images.pop(key).remove()
        for key in [k for k in self.images_pending if k[0] == gone]:
            del self.images_pending[key]
        self.place = "plots: " + ", ".join(self.names.values())
        self.query_one(StatusBar).place = self.place
        self.notify(f"{name} was deleted: its lines are gone from these plots.")
        if not self.asked:
            self.query_one("#images-note", Static).update(
                "Every experiment of these plots was deleted; q goes back."
            )
            self.query_one("#images-note", Static).display = True

    def action_reload(self) -> None:
        self.load()

    def _redraw_all(self) -> None:
        for chart in self.charts.values():
            chart.redraw()

    def action_smooth(self, direction: int) -> None:
        self.view.smoother(direction > 0)
        self._redraw_all()
        weight = self.view.weight
        self.notify(f"Smoothing {weight:g}." if weight else "No smoothing.")

    def action_log_scale(self) -> None:
        self.view.log_scale = not self.view.log_scale
        self._redraw_all()
        if self.view.log_scale:
            self.notify("Log scale: values at or below zero are left out.")

    def action_wall_time(self) -> None:
        self.view.wall_time = not self.view.wall_time
        self._redraw_all()
        self.notify(
            "x axis: time since the first point (when each step arrived)."
            if self.view.wall_time
            else "x axis: step."
        )

    def action_step(self, direction: int) -> None:
        if self.view.wall_time:  # it moved a cursor nobody could see
            self.notify("The step cursor is for the step axis: x switches back to it.")
            return
        steps = sorted({s for chart in self.charts.values() for s in chart.steps()})
        if not steps:
            self.notify("No points yet to put the cursor on.")
            return
        self.view.move_cursor(steps, direction)
        self._redraw_all()
        self._read_cursor_values()

    @work(group="cursor", exclusive=True, exit_on_error=False)
    async def _read_cursor_values(self) -> None:
        """The exact values at the cursor, from the server: the lines are downsampled to
        the screen's width, and a bucket's point is not the value logged at that step."""
        await asyncio.sleep(CURSOR_READ_AFTER)  # keys held down: read once they stop
        step = self.view.cursor
        if step is None:
            return
        exact: dict[tuple[int, str], tuple[int, Any] | None] = {}
        api = studio(self).api
        for experiment_id in list(self.names):
            metrics = [m for m, chart in self.charts.items() if experiment_id in chart.data]
            if not metrics:
                continue
            try:
                found = await api.series_at(experiment_id, metrics, step)
            except ApiError:
                return  # the lines' values stay, as before
            for metric, points in found.items():
                exact[(experiment_id, metric)] = tuple(points[0]) if points else None  # type: ignore[assignment]
        if self.view.cursor == step:
            self.view.exact, self.view.exact_at = exact, step
            self._redraw_all()

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)

"""Live charts: one per metric, a line per experiment, plus the images."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Static

from tui import clock
from tui import images as pictures
from tui.client import ApiError
from tui.graphics import ImageWidget
from tui.messages import ExperimentDeleted, PointsArrived
from tui.plotting import PlotView, charted_first, family, images_shown_first
from tui.sanitize import plain
from tui.screens.base import LiveScreen
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.metric_chart import MetricChart, MetricPanel
from tui.widgets.status_bar import StatusBar

IMAGES_PER_RUN = 12
"""A run's newest images (by step) shown: DVCLive's per-step images (``img/{step}.png``)
made one picture of every step, each fetched and drawn when the plots opened."""


MAX_CHARTS = 100
"""Series charted (the first, in the order the runs list them): a run can send thousands
over its posts, and 5,000 charts took the plots screen 86 s to open."""


def _image_order(step: int | None, path: str) -> tuple[int, str]:
    """Older images first: by step (none before any), then by path."""
    return (-1 if step is None else step, path)


def _ascending(points: list[tuple[int, Any]]) -> bool:
    return all(a[0] < b[0] for a, b in itertools.pairwise(points))


DRAW_EVERY = 0.25
"""Seconds between redraws of the charts that live points changed."""
CURSOR_READ_AFTER = 0.15
"""Seconds the step cursor rests before its exact values are read from the server."""
LEFT_RIGHT = ("left", "right")


class ChartList(VerticalScroll, inherit_bindings=False):
    """The charts, scrolled up and down. ← and → are the step cursor's: the container's own
    (it never scrolls sideways) hid the screen's from the footer."""

    BINDINGS = [
        b for b in VerticalScroll.BINDINGS if isinstance(b, Binding) and b.key not in LEFT_RIGHT
    ]


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
        self.baseline_only: dict[str, tuple[list[tuple[int, Any]], dict[int, float]]] = {}
        """The baseline's series of metrics no run asked for logs (yet): (points, times) by
        metric, drawn once one of them does — alone, they opened the plots with charts of
        metrics the runs asked for do not have."""
        self._stale: set[MetricChart] = set()
        """Charts with points not drawn yet: drawn together, at most every ``DRAW_EVERY``."""
        self.images: dict[tuple[int, str], Vertical] = {}
        """Each image shown (its title and picture), by (experiment, path)."""
        self.image_steps: dict[tuple[int, str], int | None] = {}
        """The step of each image shown, by (experiment, path)."""
        self.images_hidden: dict[int, set[str]] = {}
        """The paths of each run's images not shown: older than its newest
        ``IMAGES_PER_RUN`` when they came (one logged again stays out: no churn)."""
        self.images_shown = False
        self.images_pending: dict[tuple[int, str], int | None] = {}
        """Images stored since they were fetched, to fetch again: (experiment, path) → step."""
        self.images_draining = False
        self.panels: dict[str, MetricPanel] = {}
        """Each chart's panel (the chart and its legend), by metric."""
        self.uncharted: set[str] = set()
        """Series past ``MAX_CHARTS``: not fetched, not charted (a line counts them)."""
        self.view = PlotView()
        self.place = "plots: " + ", ".join(names.values())

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with ChartList():
            yield Static("", id="charts-more")
            with Vertical(id="images"):
                yield Static("Loading…", id="images-note")
            yield Static("", id="images-more")
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
        hidden: dict[int, set[str]] = {}
        self.images_shown = False
        self.baseline_only = {}
        try:
            details = {e: await api.experiment(e) for e in list(self.names)}
            listed = dict.fromkeys(
                n for e, d in details.items() if e in self.asked for n in d.series
            )
            charted = set(charted_first(list(listed), MAX_CHARTS))
            self.uncharted = set(listed) - charted
            for experiment_id, detail in details.items():
                name = self.names.get(experiment_id, detail.name)
                few = len(detail.series) <= MAX_CHARTS  # fetched whole, else the charted ones
                wanted = None if few else [n for n in detail.series if n in charted]
                series = await api.timed_series(experiment_id, names=wanted, max_points=width)
                if experiment_id not in self.names:  # deleted meanwhile (``deleted``)
                    continue
                for metric, points in series.items():
                    if experiment_id in self.asked and metric not in charted:
                        continue
                    line = [(s, v) for s, v, _ in points]
                    times = {s: t for s, _, t in points if t is not None}
                    if experiment_id not in self.asked and metric not in self.charts:
                        self.baseline_only[metric] = (line, times)
                        continue
                    chart = self._chart(metric)
                    chart.data[experiment_id] = line
                    chart.times[experiment_id] = times
                if experiment_id not in self.asked:  # the baseline's images are not asked for
                    continue
                by_age = sorted(detail.images, key=lambda i: _image_order(i.step, i.path))
                chosen = set(images_shown_first([i.path for i in by_age], IMAGES_PER_RUN))
                newest = [image for image in by_age if image.path in chosen]
                shown = {image.path for image in newest}
                hidden[experiment_id] = {i.path for i in detail.images} - shown
                for image in newest:
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
        self.images_hidden = hidden
        self._tell_uncharted()
        await self._show_images(image_lines)
        self.images_shown = True
        self._drain_images()  # images stored while it loaded

    async def _show_images(self, images: list[tuple[int, str, str, int | None]]) -> None:
        """Each image under its title, or one line saying why it cannot be drawn."""
        box = self.query_one("#images", Vertical)
        note = self.query_one("#images-note", Static)
        await box.remove_children(".image-item")
        self.images.clear()
        self.image_steps.clear()
        self._tell_hidden()
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
        self.image_steps[experiment_id, path] = step
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
        widget = ImageWidget(picture, classes="image")
        room = max(1, self.app.size.width - 4)  # (the padding of #images and the scrollbar)
        widget.styles.width, widget.styles.height = pictures.cell_size(picture.size, room)
        return widget

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
            if not await self._room_for(experiment_id, path, step):
                return
            if not self.images_shown:  # a reload began while the oldest went
                self.images_pending[experiment_id, path] = step
                return
            self.query_one("#images-note", Static).display = False
            await self._mount_image(experiment_id, name, path, step, picture)
            return
        self.image_steps[experiment_id, path] = step
        item.query_one(".image-title", Label).update(self._image_title(name, path, step))
        old = list(item.query(".image, .image-missing"))
        await item.mount(picture)
        await item.remove_children(old)

    async def _room_for(self, experiment_id: int, path: str, step: int | None) -> bool:
        """Whether a new image of a run is shown: its oldest goes once the run shows
        ``IMAGES_PER_RUN`` (the new one is not shown if it is the oldest itself)."""
        hidden = self.images_hidden.setdefault(experiment_id, set())
        shown = [key for key in self.images if key[0] == experiment_id]
        if len(shown) < IMAGES_PER_RUN:
            hidden.discard(path)
            self._tell_hidden()
            return True
        # The one to go: the oldest of a family shown more than once, or of the new one's
        # own family (the newest of each family stays, see ``images_shown_first``).
        count = Counter(family(key[1]) for key in shown)
        mine = family(path)
        pool = [k for k in shown if count[family(k[1])] > 1 or family(k[1]) == mine] or shown
        oldest = min(pool, key=lambda key: _image_order(self.image_steps[key], key[1]))
        oldest_step = self.image_steps[oldest]
        if path in hidden:
            # Logged again: back only in place of one at least two steps older, so that a
            # fixed set of more names than shown, logged every step, does not churn.
            if step is None or oldest_step is None or oldest_step >= step - 1:
                return False
        elif _image_order(step, path) < _image_order(oldest_step, oldest[1]):
            hidden.add(path)
            self._tell_hidden()
            return False
        hidden.discard(path)
        hidden.add(oldest[1])
        self._tell_hidden()
        del self.image_steps[oldest]
        await self.images.pop(oldest).remove()
        return True

    def _tell_uncharted(self) -> None:
        more = self.query_one("#charts-more", Static)
        count = len(self.uncharted)
        more.update(
            f"Charts of {MAX_CHARTS} series (numbered ones, like layer_0 … layer_99, last);"
            f" {count:,} more"
            f" {'is' if count == 1 else 'are'} not charted."
            if count
            else ""
        )
        more.display = bool(count)

    def _tell_hidden(self) -> None:
        hidden = sum(map(len, self.images_hidden.values()))
        more = self.query_one("#images-more", Static)
        more.update(
            f"{hidden:,} older image{'s' if hidden != 1 else ''} not shown: each run shows"
            f" {IMAGES_PER_RUN}, the newest of each kind first, then its newest by step."
            if hidden
            else ""
        )
        more.display = bool(hidden)

    def _chart(self, metric: str) -> MetricChart:
        chart = self.charts.get(metric)
        if chart is None:
            chart = MetricChart(metric, self.names, self.view, self.baseline)
            self.charts[metric] = chart
            if metric in self.baseline_only and self.baseline is not None:
                line, times = self.baseline_only.pop(metric)
                chart.data[self.baseline], chart.times[self.baseline] = line, times
            scroll = self.query_one(VerticalScroll)
            names = sorted(self.charts)
            position = names.index(metric)
            panel = self.panels[metric] = MetricPanel(chart)
            # Before the panel of the next name (known before it is mounted: its chart's
            # parent is set only then, and charts made in one go landed in any order).
            after = self.panels[names[position + 1]] if position + 1 < len(names) else None
            scroll.mount(panel, before=after or self.query_one("#images"))
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
            chart: MetricChart | None = None
            if metric in self.uncharted or (
                metric not in self.charts and len(self.charts) >= MAX_CHARTS
            ):
                if message.experiment_id in self.asked and metric not in self.uncharted:
                    self.uncharted.add(metric)
                    self._tell_uncharted()
                continue
            if message.experiment_id not in self.asked and metric not in self.charts:
                line, times = self.baseline_only.setdefault(metric, ([], {}))
            else:
                chart = self._chart(metric)
                times = chart.times.setdefault(message.experiment_id, {})
                line = chart.data.setdefault(message.experiment_id, [])
            for step, _ in points:
                times.setdefault(step, now)
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
            if chart is not None:
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
            self.baseline_only = {}
        # Every change to what is shown first, then the widgets go (awaited): a look in
        # between saw charts still holding the deleted run's lines.
        leaving: list[Widget] = []
        for metric, chart in list(self.charts.items()):
            chart.data.pop(gone, None)
            chart.times.pop(gone, None)
            if chart.baseline == gone:
                chart.baseline = None
            if any(e in self.asked for e in chart.data):
                chart.redraw()
            else:  # none of the runs asked for logs it (the baseline may: kept aside)
                if self.baseline is not None and self.baseline in chart.data:
                    self.baseline_only[metric] = (
                        chart.data[self.baseline],
                        chart.times.get(self.baseline, {}),
                    )
                del self.charts[metric]
                leaving.append(self.panels.pop(metric))
        leaving += [self.images.pop(key) for key in [k for k in self.images if k[0] == gone]]
        self.image_steps = {k: v for k, v in self.image_steps.items() if k[0] != gone}
        self.images_hidden.pop(gone, None)
        self._tell_hidden()
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
        for widget in leaving:
            await widget.remove()

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
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False, immediate=True)

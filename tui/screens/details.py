"""One experiment in full: status and failure reason, params, metrics, images."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from shared.api import ExperimentDetail, ImageInfo
from shared.watches import is_stalled
from tui import clock, theme
from tui.client import ApiError
from tui.format import AGO_EVERY, NULL, STATUS_GLYPH, ago, time_ago, value_text
from tui.messages import ExperimentChanged, ExperimentDeleted, PointsArrived
from tui.sanitize import plain
from tui.screens.base import LiveScreen
from tui.state import MAX_LISTED, listed
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar

DVC_RUN_FAILED = (
    "`dvc exp run` ended without saving an experiment: its command failed (see its output)"
)


class DetailsScreen(LiveScreen):
    """Everything about one experiment, live."""

    BINDINGS = [
        Binding("q,escape", "app.pop_screen", "Back", tooltip="back to the table"),
        Binding("p", "plots", "Plots", tooltip="plots of this experiment"),
        Binding("r", "reload", "Refresh", tooltip="fetch the experiment again"),
        Binding("j", "scroll(1)", show=False, tooltip="scroll down"),
        Binding("k", "scroll(-1)", show=False, tooltip="scroll up"),
    ]

    def __init__(self, experiment_id: int, events_path: str) -> None:
        super().__init__()
        self.experiment_id = experiment_id
        self.events_path = events_path
        self.detail: ExperimentDetail | None = None
        self.gone = False
        """The run was deleted: nothing is loaded again (a reconnect's 404 said less)."""

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with VerticalScroll():
            yield Static("Loading…", id="body")
        yield Footer(compact=True)

    place = "details"
    known_until: float | None = None
    """While the stream is away, when it went."""

    def on_mount(self) -> None:
        self.load()
        # "(5s ago)" must not stay 5s: the times are told again as they age.
        self.set_interval(AGO_EVERY, self.render_detail)

    def on_resize(self) -> None:
        self.render_detail()  # names wrap at the width there is

    def reconnected(self) -> None:
        self.load()  # a failed load, or changes missed while the server was away

    def connection_changed(self, connected: bool) -> None:
        # While the stream is away the run may well be posting on: judged as of the drop
        # (as the table does), not called stalled for news that could not come.
        if connected:
            self.known_until = None
        elif self.known_until is None:
            self.known_until = clock.now()

    def action_reload(self) -> None:
        self.load()

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        if self.gone:
            return
        try:
            detail = await studio(self).api.experiment(self.experiment_id)
        except ApiError as exc:
            if self.gone:  # its 404: the page says it was deleted
                return
            studio(self).report(exc)
            if self.detail is None:
                # A 404 is for good (deleted, or not in a project of yours): no "once the
                # server is back" then, as if it were away.
                after = (
                    "q goes back."
                    if exc.status == 404
                    else "It loads once the server is back; r tries again now."
                )
                self.query_one("#body", Static).update(
                    plain(f"Could not load the experiment: {exc.detail}\n{after}")
                )
            return
        if not self.gone:  # (deleted while it loaded)
            self.detail = detail
            self.render_detail()

    @on(ExperimentChanged)
    def changed(self, message: ExperimentChanged) -> None:
        # The event carries the whole row: apply it rather than refetch on every step.
        row = message.row
        if row.id != self.experiment_id or self.detail is None:
            return
        fields = {f: getattr(row, f) for f in row.__struct_fields__}
        self.detail = msgspec.structs.replace(self.detail, **fields)
        self.render_detail()

    @on(ExperimentDeleted)
    def deleted(self, message: ExperimentDeleted) -> None:
        """This run was deleted (elsewhere): say so instead of showing it as if alive."""
        if message.experiment_id != self.experiment_id or self.detail is None:
            return
        name, self.detail, self.gone = self.detail.name, None, True
        self.query_one("#body", Static).update(plain(f"{name} was deleted; q goes back."))
        self.notify(f"{name} was deleted.")

    @on(PointsArrived)
    def points(self, message: PointsArrived) -> None:
        """A new series or a replaced image shows here too (its rows are the plots')."""
        d = self.detail
        if message.experiment_id != self.experiment_id or d is None:
            return
        new_series = [name for name in message.series if name not in d.series]
        if not new_series and not message.images:
            return
        images = {i.path: i for i in d.images}
        for path, step in message.images.items():
            images[path] = ImageInfo(path=path, step=step, updated_at=clock.utcnow())
        self.detail = msgspec.structs.replace(
            d,
            series=sorted([*d.series, *new_series]),
            images=sorted(images.values(), key=lambda i: i.path),
        )
        self.render_detail()

    def render_detail(self) -> None:
        d = self.detail
        if d is None:
            return
        self.query_one(StatusBar).place = d.name
        grid = Table.grid(padding=(0, 2))
        # Long names and values wrap instead of ending in "…": this page is where a
        # name cut everywhere else is read whole. Names take at most half the width, and
        # leave the values room for a whole commit SHA (40) where the screen has it.
        width = self.query_one("#body", Static).content_size.width or 78
        half = max(16, min(width // 2, width - 42))
        grid.add_column(style="bold", overflow="fold", max_width=half)
        grid.add_column(overflow="fold")
        now = clock.now()
        stalled = is_stalled(d, now if self.known_until is None else min(now, self.known_until))
        status = (
            Text("◌ stalled", style=theme.STALLED)
            + Text(f"  (running, but silent for {ago(d.updated_at, clock.utcnow())})")
            if stalled
            else Text(f"{STATUS_GLYPH[d.status]} {d.status}", style=theme.STATUS_STYLE[d.status])
        )
        grid.add_row("experiment", Text(d.name))
        grid.add_row("status", status)
        # Why it failed, right under its status: below nine other lines it was off an
        # 80x24 screen. One label for all of them (`livestudio run` adds the exit's).
        reasons = [f"{error.cls}: {error.text}".strip(": ") for error in d.errors]
        if d.status == "failed" and not d.errors and d.client == "dvc" and not d.experiment_rev:
            # What SPEC §3 makes of a `done` from `dvc exp run` without a commit: DVC sends
            # no error with it, so say what it means.
            reasons.append(DVC_RUN_FAILED)
        for index, reason in enumerate(reasons):
            grid.add_row(Text("reason" if index == 0 else "", style="bold red"), Text(reason))
        for label, value in (
            ("baseline", Text(d.baseline_sha)),
            ("message", Text(d.message or "")),
            ("client", Text(d.client)),
            ("posted by", Text(d.poster or "(a deleted account)")),
            ("step", Text(_step_text(d, stalled))),
            ("started", Text(_moment(d.started_at))),
            ("updated", Text(_moment(d.updated_at))),
            ("experiment rev", Text(d.experiment_rev or "")),
            ("pushed", Text("yes" if d.pushed else "no")),
        ):
            grid.add_row(label, value)
        for title, values in (("params", d.params), ("metrics", d.metrics)):
            grid.add_row("", "")
            grid.add_row(Text(title, style="underline"), "" if values else "none")
            shown, more = listed(values)
            for name, value in shown:  # (listed, so a None is a null in the file)
                grid.add_row(Text(name), Text(value_text(NULL if value is None else value)))
            if more:
                grid.add_row(
                    Text("…", style="dim"),
                    Text(
                        f"{more:,} more {title}: too many to list here (the first"
                        f" {MAX_LISTED} are; GET /api/experiments/{d.id} has every one)",
                        style="dim",
                    ),
                )
        grid.add_row("", "")
        grid.add_row(Text("series", style="underline"), _series_text(d))
        grid.add_row(Text("images", style="underline"), _images_text(d))
        self.query_one("#body", Static).update(grid)

    def action_plots(self) -> None:
        from tui.screens.plots import PlotsScreen

        if self.detail is None:
            self.notify("The experiment has not loaded yet.")
            return
        self.app.push_screen(PlotsScreen({self.detail.id: self.detail.name}, self.events_path))

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False, immediate=True)


IMAGES_LISTED = 50
"""The newest images (by step) details lists: a run logging ``img/{step}.png`` every step
has one of every step."""


SERIES_LISTED = 100
"""Series names details lists (the plots chart as many): a run can send thousands."""


def _series_text(d: ExperimentDetail) -> Text:
    """The run's series names, the first ``SERIES_LISTED``, then how many more."""
    text = Text(", ".join(d.series[:SERIES_LISTED]) or "none")
    if len(d.series) > SERIES_LISTED:
        text.append(f" and {len(d.series) - SERIES_LISTED:,} more", style="dim")
    return text


def _images_text(d: ExperimentDetail) -> Text:
    """The run's images with their steps, the newest ``IMAGES_LISTED``, then how many more."""
    newest = sorted(d.images, key=lambda i: (-1 if i.step is None else i.step, i.path))
    text = Text(", ".join(f"{i.path} (step {i.step})" for i in newest[-IMAGES_LISTED:]) or "none")
    if len(newest) > IMAGES_LISTED:
        text.append(f" and {len(newest) - IMAGES_LISTED:,} older ones", style="dim")
    return text


def _moment(moment: datetime) -> str:
    """When, in UTC (the same for everyone reading it over SSH), and how long ago."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC ({time_ago(utc, clock.utcnow())})"


def _step_text(d: ExperimentDetail, stalled: bool) -> str:
    """The step, and while the run goes on how fast it steps (as the table's steps/s; not
    when stalled: that rate is of steps long past)."""
    rate = d.steps_per_s if d.status == "running" and not stalled else None
    return f"{value_text(d.step)}  ({rate:.3g} steps/s)" if rate else value_text(d.step)

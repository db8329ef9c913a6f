"""One project's live experiment table."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import Input

from shared.api import ProjectRow
from shared.watches import WatchCreate
from tui import clock
from tui.client import ApiError
from tui.messages import (
    BaselineChanged,
    ExperimentChanged,
    ExperimentDeleted,
    PointsArrived,
    ProjectChanged,
    ProjectDeleted,
    SnapshotLoaded,
    StreamReset,
)
from tui.screens.base import LiveScreen
from tui.state import DELTA, MAX_LISTED, MAX_TABLE_COLUMNS, ProjectState
from tui.typed import studio
from tui.widgets.experiment_table import ExperimentTable
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar

TICK = 0.25
COUNT_CHECK = 1.0
RESORT_EVERY = 1.0
"""Seconds at most between re-sorts while the sorted column's values change (rows move
under the cursor no faster than this, and 1,000 updates a second lay out once)."""
"""Seconds after a project's new counts before the rows are checked against them."""
SEED_SPARKLINES = 50
"""The newest experiments whose trend is filled at once, besides those in view."""


class ProjectScreen(LiveScreen):
    """Experiments grouped by baseline commit, updating cell by cell as events arrive."""

    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip="every key"),
        Binding("j", "cursor_down", "Down", show=False, tooltip="move down"),
        Binding("k", "cursor_up", "Up", show=False, tooltip="move up"),
        Binding("space", "select", "Select", tooltip="select or unselect the experiment"),
        Binding(
            "enter",
            "details",
            "Details",
            tooltip="details (status, failure reason, params, metrics); on a group: fold it",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            tooltip="filter by name (enter keeps it, esc clears it)",
        ),
        Binding(
            "s",
            "sort",
            "Sort",
            tooltip="sort by the current column, or click its header (again: reverse)",
        ),
        Binding("l", "live", "Live", tooltip="Live: only running experiments, or all again"),
        Binding(
            "p", "plots", "Plots", tooltip="plots of the experiment, the selection, or the group"
        ),
        Binding(
            "c",
            "compare",
            "Compare",
            tooltip="compare the selection (or the group under the cursor)",
        ),
        Binding(
            "m",
            "primary",
            "Trend",
            tooltip="the metric of the trend sparkline (and of the baseline difference)",
        ),
        Binding(
            "M",
            "direction",
            "Better",
            tooltip="flip whether lower or higher is better for the trend metric",
        ),
        Binding(
            "b",
            "baseline",
            "Baseline",
            tooltip="pin the experiment as my baseline (again: unpin); Δ base compares with it",
        ),
        Binding(
            "exclamation_mark",
            "watch",
            "Watch",
            key_display="!",
            tooltip="alert me when the experiment under the cursor (or its metric, or the"
            " project) fails, stalls, logs NaN/inf or crosses a threshold",
        ),
        Binding("t", "profile", "Profile", tooltip="profile and tokens"),
        Binding(
            "u",
            "members",
            "Members",
            show=False,  # the footer has no room left at 80 columns; help and palette list it
            tooltip="the project's members (its owner invites and removes them)",
        ),
        Binding(
            "x",
            "delete",
            "Delete",
            tooltip="delete the experiment (asks first; its poster or the project's owner)",
        ),
        Binding(
            "f",
            "fail",
            "Fail",
            tooltip="mark the experiment Failed (asks first; its poster or the project's owner)",
        ),
        Binding("q,escape", "back", "Back", tooltip="back to the projects"),
    ]

    def __init__(self, project: ProjectRow) -> None:
        super().__init__()
        self.project = project
        self.state = ProjectState()
        self._last_updated_refresh = 0.0
        self._refetched_for: int | None = None
        self._resort: Timer | None = None
        self._told_unlisted = False
        self._seeded: set[int] = set()
        """Experiments whose trend column was filled from their series (for the metric)."""
        self._seeding = False
        self.events_path = f"/api/projects/{project.id}/events"
        self.place = project.name

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield ExperimentTable(self.state)
        yield Input(placeholder="filter by name (enter to apply, esc to clear)", id="filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.state.highlight_seconds = studio(self).settings.highlight_seconds
        self.query_one(StatusBar).show_live = True
        self.query_one(ExperimentTable).focus()
        self.set_interval(TICK, self._tick)

    @property
    def table(self) -> ExperimentTable:
        """The experiment table."""
        return self.query_one(ExperimentTable)

    # ------------------------------------------------------------ workers

    @work(group="snapshot", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Fetch every row (on connect and after a reset)."""
        try:
            rows = await studio(self).api.experiments(self.project.id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.post_message(SnapshotLoaded(rows))

    @work(group="baseline", exclusive=True, exit_on_error=False)
    async def load_baseline(self) -> None:
        """Fetch my baseline of the project and its trend series."""
        api = studio(self).api
        try:
            baseline = await api.baseline(self.project.id)
            points: list[tuple[int, object]] = []
            primary = self.state.primary
            if baseline is not None and primary is not None:
                points = list((await api.series(baseline, [primary])).get(primary, []))
        except ApiError as exc:
            studio(self).report(exc)
            return
        had = self.state.baseline_id
        self.state.baseline_id = baseline
        self.state.set_baseline_points(points)
        if had != baseline:
            self.table.show()
        self._redraw_deltas()

    def _redraw_deltas(self) -> None:
        now = clock.now()
        for experiment_id in self.state.rows:
            self.table.update_cells(experiment_id, [DELTA, "name"], now)

    def seed_sparklines(self) -> None:
        """Fill the trend column again from the experiments' series (a new snapshot, or
        another trend metric): the rows in view, then the newest; ``_tick`` asks for the
        rest as they are scrolled into view."""
        self._seeded = set()  # (here, not in the worker: a tick's may replace it unstarted)
        self._seed_sparklines()

    @work(group="sparklines", exclusive=True, exit_on_error=False)
    async def _seed_sparklines(self) -> None:
        primary = self.state.primary
        if primary is None:
            return
        self._seeding = True
        try:
            newest = sorted(self.state.rows.values(), key=lambda r: r.updated_at, reverse=True)
            wanted = [*self.table.visible_experiment_ids()]
            wanted += [row.id for row in newest[:SEED_SPARKLINES]]
            api = studio(self).api
            for experiment_id in dict.fromkeys(wanted):
                if experiment_id in self._seeded or experiment_id not in self.state.rows:
                    continue
                try:
                    series = await api.series(experiment_id, [primary], max_points=40)
                except ApiError:
                    # The server is away: the snapshot that follows the reconnection fills
                    # them all again; until then no tick asks for any of them.
                    self._seeded.update(wanted)
                    return
                self._seeded.add(experiment_id)
                points = series.get(primary, [])
                if points and self.state.primary == primary:
                    self.state.seed_history(experiment_id, points)
                    self.table.update_cells(experiment_id, ["spark"], clock.now())
        finally:
            self._seeding = False

    # ------------------------------------------------------------ events

    @on(SnapshotLoaded)
    def snapshot(self, message: SnapshotLoaded) -> None:
        now = clock.now()
        self.table.known_until = None  # the rows are as of now again
        self.table.loaded = True
        known = set(self.state.rows)
        for row in message.rows:
            self.state.apply_row(row, now, highlight=row.id in known)
        for gone in known - {r.id for r in message.rows}:
            self.state.remove(gone)
        self.state.settle_primary()  # (seed_sparklines and load_baseline below follow it)
        if self.state.rechoose:
            self.state.choose_columns()
        self.table.show()
        self.table.settle_cursor()
        self._update_counter()
        self._tell_unlisted()
        self.seed_sparklines()
        self.load_baseline()
        # Thousands of rows make each of the collector's full passes long (30-80 ms at
        # 2,000 rows x 100 metrics), and live updates bring one on every few seconds: a
        # dropped frame each time. Collect once now, while the table is being opened, then
        # keep everything alive so far out of later passes (rows an update replaces are
        # still freed at once: nothing refers to them). Unfrozen when the screen closes.
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def on_unmount(self) -> None:
        gc.unfreeze()  # what this screen leaves behind is collected as usual again

    @on(ExperimentChanged)
    def experiment_changed(self, message: ExperimentChanged) -> None:
        now = clock.now()
        row = message.row
        old = self.state.rows.get(row.id)
        primary = self.state.primary
        change = self.state.apply_row(row, now)
        if primary is None and self.state.primary is not None and self.state.baseline_id:
            self.load_baseline()  # the first metric arrived: the baseline's series to match
        elif primary is not None and self.state.primary != primary:
            self._primary_changed()  # a loss arrived where the trend showed a score
        if self.state.rechoose and self.state.choose_columns():
            self.table.show()  # other names became columns (those most runs log)
        elif change.new_columns:
            self.table.add_new_columns(change.new_columns)
        if self.state.unlisted and not self._told_unlisted:
            self._tell_unlisted()
        was_visible = old is not None and self.state.is_visible(old)
        if change.new or was_visible != self.state.is_visible(row):
            self.table.place_rows()
        else:
            self.table.update_cells(row.id, change.columns, now)
            if self.state.sort_column in change.columns and self._resort is None:
                # The order shown must stay the order the header's ▲ claims.
                self._resort = self.set_timer(RESORT_EVERY, self._sort_again)
        if old is None or old.status != row.status:
            self._update_counter()  # counting runs costs a pass over every row

    def _tell_unlisted(self) -> None:
        """Once: the names past the table's columns are not lost, only not columns."""
        if not self.state.unlisted or self._told_unlisted:
            return
        self._told_unlisted = True
        self.notify(
            f"This project's runs log {self.state.unlisted:,} more metric and param names than"
            f" the table has columns for ({MAX_TABLE_COLUMNS} of each: those most runs log); enter"
            f" (details) and c (compare) list a run's first {MAX_LISTED} of each.",
            severity="warning",
            timeout=10,
        )

    @on(PointsArrived)
    def points(self, message: PointsArrived) -> None:
        row = self.state.rows.get(message.experiment_id)
        if row is not None:
            self.table.update_cells(row.id, ["updated"], clock.now())
        primary = self.state.primary
        if message.experiment_id == self.state.baseline_id and primary in message.series:
            self.state.add_baseline_points(message.series[primary])
            self._redraw_deltas()

    @on(ExperimentDeleted)
    def deleted(self, message: ExperimentDeleted) -> None:
        self.state.remove(message.experiment_id)
        if self.state.rechoose:
            self.state.choose_columns()  # its names no longer count (show lays them out)
        self.table.place_rows()
        self._update_counter()

    @on(ProjectChanged)
    def project_changed(self, message: ProjectChanged) -> None:
        self.project = message.project
        # Someone joined or left: what the project shows changed wholesale, and the counts
        # are the only sign of it. A new run's row follows its count in the same commit,
        # so the check waits a moment; it refetches once per count that disagrees.
        self.set_timer(COUNT_CHECK, self._check_count)

    def _check_count(self) -> None:
        expected = self.project.experiments
        if len(self.state.rows) == expected:
            self._refetched_for = None  # agreed: the next disagreement refetches again
        elif expected != self._refetched_for:
            self._refetched_for = expected
            self.load()

    @on(ProjectDeleted)
    def project_deleted(self, message: ProjectDeleted) -> None:
        if message.project_id == self.project.id:
            self.stream_gone(studio(self).gone_note(self.project.id, self.project.name))

    def stream_gone(self, reason: str) -> None:
        """The project is gone for this user: close it and whatever was opened over it."""
        self.notify(reason, severity="warning")
        studio(self).close_screen(self)

    @on(BaselineChanged)
    def baseline_changed(self, message: BaselineChanged) -> None:
        """Pinned elsewhere (another terminal, a script): Δ base follows it."""
        if message.project_id == self.project.id:
            self.load_baseline()

    @on(StreamReset)
    def reset(self) -> None:
        self.load()

    def connection_changed(self, connected: bool) -> None:
        if self.table.offline == connected:
            self.table.offline = not connected
            self.table.refresh()  # (the empty table's hint says which)
        if connected:
            # The snapshot, taken once the stream is open so nothing falls between; until it
            # comes, runs are still judged as of the drop (known_until).
            self.load()
        elif self.table.known_until is None:
            self.table.known_until = clock.now()

    def _update_counter(self) -> None:
        bar = self.query_one(StatusBar)
        bar.running = self.state.running
        bar.live_only = self.state.live_only

    def _tick(self) -> None:
        """Animate spinners, expire highlights, age the 'updated' column."""
        now = clock.now()
        table = self.table
        table.spinner_frame += 1
        # Only rows in view: off-screen cells are drawn fresh when scrolled to.
        visible = table.visible_experiment_ids()
        if self.state.primary and not self._seeding and not self._seeded.issuperset(visible):
            self._seed_sparklines()  # rows scrolled into view
        for experiment_id in visible:
            if self.state.rows[experiment_id].status == "running":
                table.update_cells(experiment_id, ["status", "rate"], now)
        for experiment_id, column in self.state.expire(now):
            table.update_cells(experiment_id, [column], now)
        if now - self._last_updated_refresh >= 1:
            self._last_updated_refresh = now
            for experiment_id in visible:
                table.update_cells(experiment_id, ["updated"], now)

    # ------------------------------------------------------------ actions

    def action_cursor_down(self) -> None:
        self.table.action_move(1, 0)

    def action_cursor_up(self) -> None:
        self.table.action_move(-1, 0)

    def _on_group(self, what: str) -> bool:
        """Tell the user a group header cannot ``what``; True when the cursor is on one."""
        if self.table.current_group() is None:
            return False
        self.notify(f"That is a commit's group header: move to an experiment to {what}.")
        return True

    def action_select(self) -> None:
        experiment_id = self.table.current_experiment_id()
        if experiment_id is None:
            if not self._on_group("select it"):
                self.notify("No experiment here yet.")
            return
        self.state.toggle_selection(experiment_id)
        self.table.update_cells(experiment_id, ["sel", "name"], clock.now())

    def action_live(self) -> None:
        self.state.live_only = not self.state.live_only
        self.table.show()
        self._update_counter()
        self.notify(
            "Showing running experiments only."
            if self.state.live_only
            else "Showing all experiments."
        )

    @on(StatusBar.LiveClicked)
    def live_clicked(self) -> None:
        self.action_live()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.value = self.state.name_filter
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.state.name_filter = event.value.strip()
        self.table.show()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one("#filter", Input).remove_class("visible")
        self.table.focus()

    def _sort_again(self) -> None:
        self._resort = None
        self.table.place_rows()

    def action_sort(self) -> None:
        table = self.table
        columns = self.state.columns
        column = columns[min(table.cursor_column, len(columns) - 1)]
        if column in ("sel", "spark", DELTA):
            column = "m:" + self.state.primary if self.state.primary else "name"
        self.state.sort_by(column)
        table.show()
        direction = "descending" if self.state.sort_reverse else "ascending"
        self.notify(f"Sorted by {column.split(':', 1)[-1]} ({direction}); s again flips it.")

    def action_primary(self) -> None:
        primary = self.state.cycle_primary()
        if primary is None:
            self.notify("No metrics yet.")
            return
        better = "lower" if self.state.lower_better(primary) else "higher"
        self.notify(f"Trend column shows {primary} ({better} is better; M flips it).")
        self._primary_changed()

    def _primary_changed(self) -> None:
        """The trend metric is another: its header, sparklines and baseline series."""
        self.table.relabel()
        for experiment_id in self.state.rows:
            self.table.update_cells(experiment_id, ["spark"], clock.now())
        self.seed_sparklines()
        if self.state.baseline_id is not None:
            self.load_baseline()

    def action_direction(self) -> None:
        lower = self.state.flip_direction()
        if lower is None:
            self.notify("No metrics yet.")
            return
        self.notify(f"{self.state.primary}: {'lower' if lower else 'higher'} is better.")
        self._redraw_deltas()

    def action_baseline(self) -> None:
        experiment_id = self.table.current_experiment_id()
        if experiment_id is None:
            if not self._on_group("pin it as the baseline"):
                self.notify("No experiment here yet.")
            return
        unpin = experiment_id == self.state.baseline_id
        self._pin(None if unpin else experiment_id)

    @work(group="pin", exclusive=True, exit_on_error=False)
    async def _pin(self, experiment_id: int | None) -> None:
        try:
            await studio(self).api.set_baseline(self.project.id, experiment_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        if experiment_id is None:
            self.notify("Baseline unpinned.")
        else:
            name = self.state.rows[experiment_id].name
            self.notify(f"{name} is your baseline: Δ base compares the trend metric with it.")
        self.load_baseline()

    def action_watch(self) -> None:
        from tui.screens.watch_dialog import WatchDialog, WatchTarget

        experiment_id = self.table.current_experiment_id()
        if experiment_id is None:
            if not self._on_group("watch it"):
                # No run yet: the project can be watched before its first one starts.
                target = WatchTarget(
                    None, "", self.project.id, self.project.name, lower_better=True
                )
                self.app.push_screen(WatchDialog(target, send=self._create_watch))
            return
        row = self.state.rows[experiment_id]
        columns = self.state.columns
        column = columns[min(self.table.cursor_column, len(columns) - 1)]
        metric = column[2:] if column.startswith("m:") else None
        value = row.metrics.get(metric) if metric else None
        target = WatchTarget(
            experiment_id,
            row.name,
            self.project.id,
            self.project.name,
            metric,
            value if isinstance(value, float | int) and math.isfinite(value) else None,
            self.state.lower_better(metric) if metric else True,
            self.state.known_metrics,
        )
        self.app.push_screen(WatchDialog(target, send=self._create_watch))

    async def _create_watch(self, watch: WatchCreate) -> None:
        """Sent from the form, which shows a refusal (see ``dialogs.sent``)."""
        made = await studio(self).api.create_watch(watch)
        self.notify(f"Watching for {made.describe()} on {made.target}; A lists alerts.")

    def _targets(self) -> list[int]:
        """The selection; else the group under the cursor; else the current experiment.

        Selected experiments the filter or a folded group hides still count: the toast
        says so, since what is acted on is then not all on screen.
        """
        if self.state.selection:
            chosen = [i for i in self.state.rows if i in self.state.selection]
            shown = set(self.table.shown_keys())
            hidden = sum(str(i) not in shown for i in chosen)
            if hidden:
                self.notify(
                    f"{hidden} of the {len(chosen)} selected experiments"
                    f" {'is' if hidden == 1 else 'are'} hidden by the filter or a folded"
                    " group; they are included (space unselects).",
                )
            return chosen
        group = self.table.current_group()
        if group is not None:
            return group[1]
        current = self.table.current_experiment_id()
        return [current] if current is not None else []

    @on(ExperimentTable.SortRequested)
    def header_clicked(self) -> None:
        self.action_sort()

    @on(ExperimentTable.CellSelected)
    def cell_selected(self) -> None:
        self.action_details()

    def action_details(self) -> None:
        from tui.screens.details import DetailsScreen

        group = self.table.current_group()
        if group is not None:
            folded = self.state.toggle_fold(group[0])
            self.table.show()
            self.notify(f"Group {group[0][:7]} {'folded' if folded else 'unfolded'}.")
            return
        experiment_id = self.table.current_experiment_id()
        if experiment_id is None:
            self.notify("No experiment here yet.")
            return
        self.app.push_screen(DetailsScreen(experiment_id, self.events_path))

    def action_plots(self) -> None:
        from tui.screens.plots import PlotsScreen

        targets = self._targets()
        if not targets:
            self.notify("Move to an experiment (or select some with space) first.")
            return
        names = {i: self.state.rows[i].name for i in targets}
        self.app.push_screen(PlotsScreen(names, self.events_path, self._baseline_named()))

    def _baseline_named(self) -> tuple[int, str] | None:
        baseline = self.state.baseline_id
        row = self.state.rows.get(baseline) if baseline is not None else None
        return (row.id, row.name) if row is not None else None

    def action_compare(self) -> None:
        from tui.screens.compare import CompareScreen

        selected = self._targets()
        if len(selected) < 2:
            if self.state.selection:  # the selection wins over the group under the cursor
                self.notify(
                    "Only one experiment is selected: select another with space (or unselect"
                    " it to compare the group under the cursor), then press c."
                )
            else:
                self.notify(
                    "Select two or more experiments with space (or move to a commit's group),"
                    " then press c."
                )
            return
        baseline = self.state.baseline_id
        self.app.push_screen(
            CompareScreen(
                selected, dict(self.state.rows), self.events_path, baseline, self.state.lower_better
            )
        )

    def action_profile(self) -> None:
        from tui.screens.profile import ProfileScreen

        self.app.push_screen(ProfileScreen())

    def action_members(self) -> None:
        from tui.screens.members import MembersScreen

        self.app.push_screen(MembersScreen(self.project))

    def action_delete(self) -> None:
        self._confirm_then(
            "Delete experiment {name} with all its points and images?",
            "Delete",
            self._delete,
            if_running=(
                " It is still running: if it posts again, it comes back with only its new steps."
            ),
        )

    def action_fail(self) -> None:
        self._confirm_then(
            "Mark experiment {name} as Failed?",
            "Mark failed",
            self._fail,
            if_running=" It is still running: if it posts again, it shows as running again.",
            done_if="failed",
        )

    def _confirm_then(
        self,
        question: str,
        verb: str,
        action: Callable[[int], object],
        if_running: str = "",
        done_if: str | None = None,
    ) -> None:
        """Ask about the experiment under the cursor, then act on it."""
        experiment_id = self.table.current_experiment_id()
        if experiment_id is None:
            if not self._on_group(verb.lower() + " it"):
                self.notify("No experiment here yet.")
            return
        self._ask_if_allowed(experiment_id, question, verb, action, if_running, done_if)

    @work(group="ask", exclusive=True, exit_on_error=False)  # never cancels a change under way
    async def _ask_if_allowed(
        self,
        experiment_id: int,
        question: str,
        verb: str,
        action: Callable[[int], object],
        if_running: str = "",
        done_if: str | None = None,
    ) -> None:
        """Ask only someone the server will let act: a question answered by a refusal
        is worse than none (nor asked when the run has the status it would get)."""
        from tui.screens.dialogs import ConfirmDialog, if_confirmed

        try:
            detail = await studio(self).api.experiment(experiment_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        if detail.may_change is False:  # None: a server too old to say; it refuses itself
            poster = f"its poster ({detail.poster})" if detail.poster else "its poster"
            self.notify(
                f"Only {poster} or the project's owner can {verb.lower()} {detail.name}.",
                severity="warning",
            )
            return
        if done_if is not None and detail.status == done_if:
            self.notify(f"{detail.name} is {done_if} already.")
            return
        self.app.push_screen(
            ConfirmDialog(
                question.format(name=detail.name)
                + (if_running if detail.status == "running" else ""),
                verb,
            ),
            if_confirmed(lambda: action(experiment_id)),
        )

    @work(group="manual", exit_on_error=False)
    async def _delete(self, experiment_id: int) -> None:
        try:
            await studio(self).api.delete_experiment(experiment_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.notify("Experiment deleted.")

    @work(group="manual", exit_on_error=False)
    async def _fail(self, experiment_id: int) -> None:
        try:
            await studio(self).api.fail_experiment(experiment_id)
        except ApiError as exc:
            studio(self).report(exc)

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus:
            box.value = ""
            self.filter_done()
            return
        self.app.pop_screen()

"""Experiments side by side: params and metrics as rows, one column per experiment."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding

from shared.api import ExperimentRow
from tui import clock, theme
from tui.format import lower_is_better, middle_cut, value_text
from tui.messages import ExperimentChanged, ExperimentDeleted
from tui.screens.base import LiveScreen
from tui.state import CompareLine, compare
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar
from tui.widgets.tables import WholeColumnTable

LABEL_ROOM_MIN = 24
"""The fewest cells the names of params and metrics get (a third of the terminal, above)."""


class CompareScreen(LiveScreen):
    """Compare two or more experiments, live."""

    BINDINGS = [
        Binding("q,escape", "app.pop_screen", "Back", tooltip="back to the table"),
        Binding("d", "differences", "Only differences", tooltip="only rows that differ, or all"),
        Binding("p", "plots", "Overlaid plots", tooltip="plots of the compared experiments"),
        Binding("j", "cursor_down", show=False, tooltip="move down"),
        Binding("k", "cursor_up", show=False, tooltip="move up"),
    ]

    def __init__(
        self,
        ids: list[int],
        rows: dict[int, ExperimentRow],
        events_path: str,
        baseline: int | None = None,
        lower_better: Callable[[str], bool] = lower_is_better,
    ) -> None:
        super().__init__()
        self.baseline = baseline
        self.lower_better = lower_better
        """Whether a metric's lower values are best (the project's, ``M`` flips included)."""
        self.ids = ids
        self.rows = {i: rows[i] for i in ids}
        self.events_path = events_path
        self.only_differences = False
        self.changed_at: dict[tuple[str, int], float] = {}
        self.lines: list[CompareLine] = []
        self.place = f"compare {len(ids)} experiments"
        self.label_room = LABEL_ROOM_MIN
        """The cells the names of params and metrics are given (``_label_room``)."""

    def compose(self) -> ComposeResult:
        yield StatusBar()
        # The metric and param names stay in view while the runs scroll sideways.
        yield WholeColumnTable(cursor_type="row", id="compare", fixed_columns=1)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.show()
        self.set_interval(0.5, self._expire)

    @property
    def table(self) -> WholeColumnTable:
        """The compare table."""
        return self.query_one(WholeColumnTable)

    def on_resize(self) -> None:
        if self._label_room() != self.label_room:
            self.show()
        else:
            self.table.scroll_to_column(self.table.left_column())

    def _label_room(self) -> int:
        # A third of the terminal: as wide as the longest name (a 230-character metric),
        # the fixed label column left no room for the runs at all.
        return max(LABEL_ROOM_MIN, self.app.size.width // 3)

    def show(self) -> None:
        """Build the table from the current rows."""
        table = self.table
        cursor, left = table.cursor_row, table.left_column()
        self.label_room = self._label_room()
        table.clear(columns=True)
        table.add_column("", key="name")
        for experiment_id in self.ids:
            name = self.rows[experiment_id].name
            label = f"◆ {name} (baseline)" if experiment_id == self.baseline else name
            table.add_column(Text(label), key=str(experiment_id))
        self.lines = compare([self.rows[i] for i in self.ids], self.lower_better)
        now = clock.now()
        for line in self.lines:
            if self.only_differences and not line.differs:
                continue
            table.add_row(self._label(line), *self._cells(line, now), key=line.key)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)
        # The same run at the left edge, where the columns' new widths make it start (with
        # blank room after the last run, so that ← → can bring each to the edge whole).
        table.scroll_to_column(left)

    def _label(self, line: CompareLine) -> Text:
        prefix = {"param": "param ", "metric": "metric ", "info": ""}[line.kind]
        name = middle_cut(line.name, self.label_room - len(prefix) - 2)
        if line.kind == "param" and line.differs:
            return Text(f"≠ {prefix}{name}", style=theme.DIFFERS)
        return Text(f"  {prefix}{name}", style="dim" if line.kind == "param" else "")

    def _cells(self, line: CompareLine, now: float) -> list[Text]:
        cells = []
        for index, experiment_id in enumerate(self.ids):
            text = value_text(line.values[index])
            style = theme.BEST if index in line.best else ""
            if index in line.best:
                text = f"★ {text}"
            at = self.changed_at.get((line.key, experiment_id))
            if at is not None and now - at < studio(self).settings.highlight_seconds:
                style = theme.highlight() + (
                    theme.BEST if index in line.best else theme.highlight()
                )
            cells.append(Text(text, style=style))
        return cells

    @on(ExperimentChanged)
    def changed(self, message: ExperimentChanged) -> None:
        row = message.row
        if row.id not in self.rows:
            return
        old_lines = {line.key: line.values[self.ids.index(row.id)] for line in self.lines}
        renamed = self.rows[row.id].name != row.name  # (an earlier run set aside: `x (1)`)
        self.rows[row.id] = row
        now = clock.now()
        new_lines = compare([self.rows[i] for i in self.ids], self.lower_better)
        for line in new_lines:
            if old_lines.get(line.key) != line.values[self.ids.index(row.id)]:
                self.changed_at[(line.key, row.id)] = now
        if (
            renamed
            or self.only_differences
            or [line.key for line in new_lines] != [line.key for line in self.lines]
        ):
            self.show()
            return
        self.lines = new_lines
        self._redraw(now)

    @on(ExperimentDeleted)
    def deleted(self, message: ExperimentDeleted) -> None:
        """A compared run was deleted (elsewhere): its column goes."""
        gone = message.experiment_id
        if gone not in self.rows:
            return
        name = self.rows.pop(gone).name
        self.ids.remove(gone)
        if self.baseline == gone:
            self.baseline = None
        self.changed_at = {k: at for k, at in self.changed_at.items() if k[1] != gone}
        self.place = f"compare {len(self.ids)} experiments"
        self.query_one(StatusBar).place = self.place
        self.show()
        left = "" if self.ids else "; nothing is left to compare (q goes back)"
        self.notify(f"{name} was deleted{left}.")

    def _redraw(self, now: float) -> None:
        table = self.table
        for line in self.lines:
            if line.key not in table.rows:
                continue
            table.update_cell(line.key, "name", self._label(line))
            for experiment_id, cell in zip(self.ids, self._cells(line, now), strict=True):
                table.update_cell(line.key, str(experiment_id), cell, update_width=True)

    def _expire(self) -> None:
        now = clock.now()
        limit = studio(self).settings.highlight_seconds
        gone = [k for k, at in self.changed_at.items() if now - at >= limit]
        for key in gone:
            del self.changed_at[key]
        if gone:
            self._redraw(now)

    def action_differences(self) -> None:
        self.only_differences = not self.only_differences
        self.show()
        self.notify("Only rows that differ." if self.only_differences else "All rows.")

    def action_plots(self) -> None:
        from tui.screens.plots import PlotsScreen

        baseline = self.baseline
        self.app.push_screen(
            PlotsScreen(
                {i: self.rows[i].name for i in self.ids},
                self.events_path,
                (baseline, self.rows[baseline].name) if baseline in self.rows else None,
            )
        )

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

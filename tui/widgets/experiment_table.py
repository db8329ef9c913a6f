"""The project table: groups by baseline commit, live cells, orange highlights."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from shared.api import ExperimentRow
from tui import theme
from tui.format import SPINNER, STATUS_GLYPH, ago, sparkline, value_text
from tui.state import FIXED_COLUMNS, ProjectState, column_value

GROUP_PREFIX = "g:"
LABELS = {
    "sel": " ",
    "name": "experiment",
    "status": "st",
    "step": "step",
    "updated": "updated",
    "spark": "trend",
}


class ExperimentTable(DataTable[Text | str]):
    """A DataTable that renders a ProjectState and updates only what changed."""

    DEFAULT_CSS = """
    ExperimentTable { height: 1fr; }
    """

    def __init__(self, state: ProjectState, **kwargs: object) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.state = state
        self.spinner_frame = 0
        self._order: list[str] = []

    # ------------------------------------------------------------ whole table

    def show(self) -> None:
        """Build columns and rows from scratch, keeping the cursor on the same row."""
        current = self.current_key()
        scroll = self.scroll_offset
        self.clear(columns=True)
        for column in self.state.columns:
            self._add_column(column)
        self._order = []
        now = time.time()
        for sha, ids in self.state.groups():
            self._add_group(sha, ids)
            for experiment_id in ids:
                self._add_experiment(self.state.rows[experiment_id], now)
        self._restore(current)
        self.scroll_to(scroll.x, scroll.y, animate=False, immediate=True)

    def _add_column(self, column: str) -> None:
        if column.startswith("m:"):
            label: str | Text = column[2:]
        elif column.startswith("p:"):
            label = Text(column[2:], style="italic")
        else:
            label = LABELS[column]
        self.add_column(label, key=column, default="")

    def _add_group(self, sha: str, ids: list[int]) -> None:
        first = self.state.rows[ids[0]]
        title = Text.assemble(
            ("▾ ", "dim"), (sha[:7], theme.GROUP), (f"  {first.message or ''}", "dim")
        )
        cells: list[Text | str] = ["", title] + [""] * (len(self.state.columns) - 2)
        key = GROUP_PREFIX + sha
        self.add_row(*cells, key=key)
        self._order.append(key)

    def _add_experiment(self, row: ExperimentRow, now: float) -> None:
        cells = [self.cell(row, column, now) for column in self.state.columns]
        self.add_row(*cells, key=str(row.id))
        self._order.append(str(row.id))

    def _restore(self, key: str | None) -> None:
        if key is not None and key in self._order:
            self.move_cursor(row=self._order.index(key), animate=False, scroll=False)

    # ------------------------------------------------------------ cells

    def cell(self, row: ExperimentRow, column: str, now: float) -> Text | str:
        """What one cell shows."""
        state = self.state
        if column == "sel":
            return Text("✓", style="bold") if row.id in state.selection else ""
        if column == "name":
            name = Text(row.name, style="bold" if row.id in state.selection else "")
            if row.pushed:
                name.append(" ⇡", style="green")  # pushed with dvc exp push
            return name
        if column == "status":
            glyph = (
                SPINNER[self.spinner_frame % len(SPINNER)]
                if row.status == "running"
                else STATUS_GLYPH[row.status]
            )
            style = theme.STATUS_STYLE[row.status]
            if state.is_highlighted(row.id, "status", now):
                style = style + theme.highlight()
            return Text(f"{glyph} {row.status}", style=style)
        if column == "updated":
            return ago(row.updated_at, datetime.fromtimestamp(now, UTC))
        if column == "spark":
            return Text(sparkline(list(state.history.get(row.id, ())), 10), style="#5fafff")
        text = value_text(column_value(row, column))
        if state.is_highlighted(row.id, column, now):
            return Text(text, style=theme.highlight())
        return text

    def update_cells(self, experiment_id: int, columns: list[str], now: float) -> None:
        """Redraw just these cells of one row (if the row is shown)."""
        key = str(experiment_id)
        row = self.state.rows.get(experiment_id)
        if row is None or RowKey(key) not in self.rows:
            return
        for column in columns:
            if ColumnKey(column) not in self.columns:
                continue
            value = self.cell(row, column, now)
            width = self.columns[ColumnKey(column)].content_width
            self.update_cell(key, column, value, update_width=len(value) > width)

    def add_new_columns(self, columns: list[str]) -> None:
        """Append columns for metrics or params seen for the first time."""
        now = time.time()
        for column in columns:
            if ColumnKey(column) in self.columns:
                continue
            self._add_column(column)
            for key in self._order:
                if not key.startswith(GROUP_PREFIX):
                    row = self.state.rows.get(int(key))
                    if row is not None:
                        self.update_cell(
                            key, column, self.cell(row, column, now), update_width=True
                        )

    def place_rows(self) -> None:
        """Rows appeared, vanished or moved between groups: rebuild, keeping the cursor."""
        self.show()

    # ------------------------------------------------------------ cursor

    def current_key(self) -> str | None:
        """Row key under the cursor."""
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # the cursor sits outside the rows while the table is empty
            return None

    def current_experiment_id(self) -> int | None:
        """Experiment under the cursor (None on a group row)."""
        key = self.current_key()
        if key is None or key.startswith(GROUP_PREFIX):
            return None
        return int(key)

    def visible_experiment_ids(self) -> list[int]:
        """Experiments in the rows currently scrolled into view."""
        top = int(self.scroll_offset.y)
        keys = self._order[top : top + max(1, self.size.height)]
        return [int(k) for k in keys if not k.startswith(GROUP_PREFIX)]

    def shown_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)


__all__ = ["FIXED_COLUMNS", "ExperimentTable"]

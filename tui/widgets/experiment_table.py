"""The project table: groups by baseline commit, live cells, orange highlights.

A purpose-built line-API widget rather than a DataTable: with 2,000 rows and a hundred
metric columns, a DataTable re-renders every visible cell of every column whenever any
cell changes (its caches are keyed on a table-wide update counter), which measured at
hundreds of milliseconds a frame. Here each row's rendering is cached on its own, a cell
update invalidates and repaints only its row, and only the columns in view are cut out
of the cached line.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from shared.api import ExperimentRow
from shared.watches import is_stalled
from tui import clock, theme
from tui.format import SPINNER, STATUS_GLYPH, ago, cell_len, middle_cut, sparkline, value_text
from tui.state import DELTA, ProjectState, column_value

GROUP_PREFIX = "g:"
LABELS = {
    "sel": " ",
    "name": "experiment",
    "status": "status",
    "step": "step",
    "rate": "steps/s",
    "updated": "updated",
    "spark": "trend",
    DELTA: "Δ base",
}
FIXED = 2  # the selection mark and the name stay in view when scrolling right
MAX_WIDTH = 28
SPARK_WIDTH = 10
"""The trend column is this wide from the start: growing it would lay the table out again."""
GAP = 2

Cell = Text | str


class ExperimentTable(ScrollView, can_focus=True):
    """Renders a ProjectState; updates repaint only the rows they touch."""

    DEFAULT_CSS = """
    ExperimentTable { height: 1fr; background: $surface; }
    ExperimentTable > .experiment-table--header { background: $panel; text-style: bold; }
    ExperimentTable > .experiment-table--cursor-row { background: $primary 25%; }
    ExperimentTable > .experiment-table--cursor { background: $primary; color: $text; }
    ExperimentTable > .experiment-table--group { text-style: bold; }
    """
    COMPONENT_CLASSES = {
        "experiment-table--header",
        "experiment-table--cursor-row",
        "experiment-table--cursor",
        "experiment-table--group",
    }
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Up", show=False, tooltip="move up"),
        Binding("down", "move(1, 0)", "Down", show=False, tooltip="move down"),
        Binding("left", "move(0, -1)", "Left", show=False, tooltip="previous column"),
        Binding("right", "move(0, 1)", "Right", show=False, tooltip="next column"),
        Binding("pageup", "page(-1)", show=False, tooltip="page up"),
        Binding("pagedown", "page(1)", show=False, tooltip="page down"),
        Binding("home", "edge(-1)", show=False, tooltip="first row"),
        Binding("end", "edge(1)", show=False, tooltip="last row"),
        # The project screen opens the details (or folds a group) on the message it posts.
        Binding("enter", "select_cell", "Details", tooltip="details; on a group: fold it"),
    ]

    class CellSelected(Message):
        """Enter (or a double click) on a cell."""

        def __init__(self, row_key: str, column: str) -> None:
            super().__init__()
            self.row_key = row_key
            self.column = column

    def __init__(self, state: ProjectState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self.spinner_frame = 0
        self.cursor_row = 0
        self.cursor_column = 1
        self.cursor_placed = False
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._columns: list[str] = []
        self._widths: dict[str, int] = {}
        self._cells: dict[str, dict[str, Cell]] = {}
        self._strips: dict[str, Strip] = {}
        self._layout = 0
        """Bumped whenever columns or widths change (cached strips are then stale)."""
        self._window: tuple[int, int, int] | None = None
        self._visible: frozenset[int] = frozenset()
        self._header: Strip | None = None
        self._groups: dict[str, list[int]] = {}
        self.known_until: float | None = None
        """While the stream is away, when it went: runs are judged stalled as of then (a
        run that kept posting meanwhile read "◌ stalled" after a few seconds)."""
        self.loaded = False
        """The project's rows came: until then no rows is no news, not "no experiments"."""
        self.offline = False
        """The stream is away (the empty hint says the server does not answer)."""

    # ------------------------------------------------------------ building

    def show(self) -> None:
        """Lay the rows out again (new rows, filters, sorting), keeping the cursor on its row.

        Cells are drawn lazily, when their row first comes into view (``render_lines``):
        drawing every cell of 10,000 rows x 100 columns up front froze the screen for ~2 s
        when a big project opened. Cells already drawn are reused (``update_cells`` keeps
        them true); only the new columns of rows drawn before are drawn here.
        """
        current = self.current_key()
        now = clock.now()
        columns = self.state.columns
        new_columns = [c for c in columns if c not in self._widths]
        old_cells, old_order = self._cells, self._order
        self._columns = columns
        self._order, self._cells = [], {}
        fresh: list[dict[str, Cell]] = []
        self._groups = {}
        for sha, ids in self.state.groups():
            key = GROUP_PREFIX + sha
            self._order.append(key)
            self._cells[key] = self._group_cells(sha, ids)
            self._groups[key] = ids
            if sha in self.state.folded:
                continue
            for experiment_id in ids:
                key = str(experiment_id)
                cells = old_cells.get(key)
                if cells is not None:
                    if new_columns:
                        row = self.state.rows[experiment_id]
                        cells.update({c: self.cell(row, c, now) for c in new_columns})
                        fresh.append(cells)
                    self._cells[key] = cells
                self._order.append(key)
        self._index = {key: i for i, key in enumerate(self._order)}
        self._measure(fresh, self._narrowed(old_cells, old_order))
        self._restore(current)
        # The rows about to be shown are drawn now, so that the first frame has their
        # widths (drawn during it, they would widen columns and cost a second frame).
        top = int(self.scroll_offset.y)
        self._draw_rows(top, top + max(self.size.height, self.app.size.height))

    def _draw_rows(self, first: int, end: int) -> None:
        """Draw the cells of the rows from ``first`` to ``end`` not drawn yet."""
        for key in self._order[first:end]:
            if key not in self._cells:
                self._row_cells(key)

    def _row_cells(self, key: str) -> dict[str, Cell]:
        """A row's cells, drawn now if this is the first time it is needed."""
        cells = self._cells.get(key)
        if cells is None:
            row = self.state.rows[int(key)]
            now = clock.now()
            cells = self._cells[key] = {c: self.cell(row, c, now) for c in self._columns}
            self._widen(cells)
        return cells

    def _widen(self, cells: dict[str, Cell]) -> None:
        """Widen columns for a newly drawn row (columns never shrink while shown)."""
        grew = False
        for column, width in self._widths.items():
            length = _length(cells.get(column, ""))
            if length > width and width < MAX_WIDTH:
                self._widths[column] = min(MAX_WIDTH, length)
                grew = True
        if grew:
            self._relayout()

    def _relayout(self) -> None:
        """Widths changed: every cached line is stale."""
        self._strips.clear()
        self._layout += 1
        self._header = None
        self.virtual_size = Size(self._virtual_width(), len(self._order) + 1)
        self.refresh()

    def _virtual_width(self) -> int:
        """The columns' width, plus room to scroll the last columns to the left edge:
        scrolling is by whole columns, and without that room the view would be stopped
        short with a column cut in half on the left."""
        widths = self._widths
        spans = [widths[c] + GAP for c in self._columns[FIXED:] if c in widths]
        return sum(widths.values()) + GAP * len(widths) + max(spans, default=0)

    def _group_cells(self, sha: str, ids: list[int]) -> dict[str, Cell]:
        first = self.state.rows[ids[0]]
        folded = sha in self.state.folded
        title = Text.assemble(
            ("▸ " if folded else "▾ ", "dim"),
            (sha[:7], theme.GROUP),
            (f"  {first.message or ''}", "dim"),
            (f"  ({len(ids)} hidden)" if folded else "", "dim"),
        )
        return {"name": title}

    def _narrowed(self, old_cells: dict[str, dict[str, Cell]], old_order: list[str]) -> set[str]:
        """The columns whose widest cell left the table (its run deleted, filtered out or
        folded away): they may shrink, now that nothing new is being drawn into them.

        Checks whichever is fewer, the rows that left or those that stay: deleting one
        run of 10,000 drawn rows must not measure them all again.
        """
        shown = self._cells
        gone = [
            old_cells[k]
            for k in old_order
            if k not in shown and k in old_cells and not k.startswith(GROUP_PREFIX)
        ]
        if not gone:
            return set()
        widths = self._widths
        if len(gone) < len(shown):
            return {
                c
                for c in self._columns
                if c in widths and any(_length(cells.get(c, "")) >= widths[c] for cells in gone)
            }
        return {c for c in self._columns if c in widths}

    def _measure(
        self, fresh: list[dict[str, Cell]], narrowed: frozenset[str] | set[str] = frozenset()
    ) -> None:
        """Widen columns for newly drawn cells; those in ``narrowed`` are measured again
        from the rows shown (otherwise columns never shrink while shown: no jitter)."""
        widths = {}
        rows = (
            [cells for key, cells in self._cells.items() if not key.startswith(GROUP_PREFIX)]
            if narrowed
            else []
        )
        for column in self._columns:
            longest = max((_length(cells[column]) for cells in fresh), default=0)
            kept = self._widths.get(column, 0)
            if column in narrowed:
                kept = max((_length(cells.get(column, "")) for cells in rows), default=0)
            known = max(kept, min(MAX_WIDTH, self._label(column).cell_len))
            if column == "spark":
                known = max(known, SPARK_WIDTH)
            widths[column] = min(MAX_WIDTH, max(known, longest, 1))
        if "name" in widths:
            # A group's title runs on over the status and step cells it does not have
            # (``_line``): only what does not fit there widens the name column, which never
            # shrinks (a commit message, or "(3 hidden)" once folded, kept it wide for good).
            room = sum(widths[c] + GAP for c in self._columns[2:4] if c in widths)
            titles = [
                min(_length(self._cells[k]["name"]), MAX_WIDTH) - room
                for k in self._order
                if k.startswith(GROUP_PREFIX)
            ]
            widths["name"] = min(MAX_WIDTH + 8, max([widths["name"], *titles]))
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()
        self._layout += 1
        self._header = None
        self.virtual_size = Size(self._virtual_width(), len(self._order) + 1)
        self.refresh()

    def _label(self, column: str, room: int | None = None) -> Text:
        """The column's header; given ``room`` (its width), a long metric or param name
        is cut in its middle, keeping both ends: names that differ only at their end
        (`val/…/precision`, `val/…/recall`) read the same cut at the end."""
        name = column[2:]
        if room is not None:
            name = middle_cut(name, max(8, room - (2 if self.state.sort_column == column else 0)))
        if column.startswith("m:"):
            label = Text(name)
        elif column.startswith("p:"):
            label = Text(name, style="italic")
        else:
            label = Text(LABELS[column])
        if column == "spark" and self.state.primary:
            label.append(f" {self.state.primary}")  # which metric the lines draw
        elif column == "name" and self.state.name_filter:
            label.append(f" /{self.state.name_filter}", style="reverse")  # rows are hidden
        if self.state.sort_column == column:
            label.append(" ▼" if self.state.sort_reverse else " ▲")
        return label

    def relabel(self) -> None:
        """The header changed (the trend metric): redraw it, widening what it needs."""
        self._header = None
        if self._fit_labels():
            self._relayout()
        else:
            self.refresh_line(0)

    def _fit_labels(self) -> bool:
        """Widen columns whose label is wider than they are (a sort arrow, a filter)."""
        grew = False
        for column in self._columns:
            wide = min(MAX_WIDTH, self._label(column).cell_len)
            if column in self._widths and self._widths[column] < wide:
                self._widths[column] = wide
                grew = True
        return grew

    def settle_cursor(self) -> None:
        """From now on the cursor stays on its experiment as rows come and go (the
        project's rows are all in): a new run above it must not slide another under it.
        In an empty table the first run to arrive still takes the cursor."""
        self.cursor_placed = True

    def _restore(self, key: str | None) -> None:
        if key is None or not self.cursor_placed:
            # Until the project's rows are in (rows keep arriving while it opens), or the
            # user moves, the cursor sits on the first experiment, where p, enter and c
            # act at once.
            row = next((i for i, k in enumerate(self._order) if not k.startswith(GROUP_PREFIX)), 0)
        else:
            row = self._index.get(key, self.cursor_row)
        self.move_cursor(row=row, placed=False)

    # ------------------------------------------------------------ cells

    def _stalled(self, row: ExperimentRow, now: float) -> bool:
        return is_stalled(row, now if self.known_until is None else min(now, self.known_until))

    def cell(self, row: ExperimentRow, column: str, now: float) -> Cell:
        """What one cell shows."""
        state = self.state
        if column == "sel":
            # Not ✓: that is Completed's mark, one column to the right.
            return Text("*", style="bold") if row.id in state.selection else ""
        if column == "name":
            baseline = row.id == state.baseline_id
            marks = (2 if row.pushed else 0) + (2 if baseline else 0)
            # Cut in the middle: runs named alike differ at their end (…_seed_0, …_seed_1).
            shown = middle_cut(row.name, MAX_WIDTH - marks)
            name = Text(shown, style="bold" if row.id in state.selection else "")
            if row.pushed:
                name.append(" ⇡", style="green")  # pushed with dvc exp push
            if baseline:
                name.append(" ◆", style="bold")
            return name
        if column == "status":
            if self._stalled(row, now):
                return Text("◌ stalled", style=theme.STALLED)
            glyph = (
                SPINNER[self.spinner_frame % len(SPINNER)]
                if row.status == "running"
                else STATUS_GLYPH[row.status]
            )
            style = theme.STATUS_STYLE[row.status]
            stage = state.highlight_stage(row.id, "status", now)
            if stage is not None:
                style = style + theme.highlight(stage)
            return Text(f"{glyph} {row.status}", style=style)
        if column == "rate":
            rate = column_value(row, "rate")
            # A stalled run's rate is that of steps long past: blank beside "◌ stalled".
            return f"{rate:.3g}" if rate and not self._stalled(row, now) else ""
        if column == DELTA:
            if row.id == state.baseline_id:
                return Text("baseline", style="bold")
            delta = state.delta(row)
            if delta is None:
                # A run gone NaN or infinite: said as such, not a blank beside its "nan".
                gone = state.nonfinite_trend(row)
                return Text(value_text(gone), style=theme.WORSE) if gone is not None else ""
            better = state.is_better(delta)
            return Text(f"{delta:+.3g}", style=theme.BETTER if better else theme.WORSE)
        if column == "updated":
            return ago(row.updated_at, datetime.fromtimestamp(now, UTC))
        if column == "spark":
            return Text(
                sparkline(list(state.history.get(row.id, ())), SPARK_WIDTH), style="#5fafff"
            )
        text = value_text(column_value(row, column))
        stage = state.highlight_stage(row.id, column, now)
        if stage is not None:
            return Text(text, style=theme.highlight(stage))
        return text

    def get_cell(self, row_key: str, column: str) -> Cell:
        """The content of a cell as last drawn."""
        if row_key.startswith(GROUP_PREFIX) or row_key not in self._index:
            return self._cells.get(row_key, {}).get(column, "")
        return self._row_cells(row_key).get(column, "")

    def update_cells(self, experiment_id: int, columns: list[str], now: float) -> None:
        """Redraw just these cells of one row (if the row is shown)."""
        key = str(experiment_id)
        row = self.state.rows.get(experiment_id)
        cells = self._cells.get(key)
        if row is None or cells is None:
            return
        grew = False
        for column in columns:
            if column not in self._widths:
                continue
            value = self.cell(row, column, now)
            if _same(value, cells.get(column)):
                continue
            cells[column] = value
            if _length(value) > self._widths[column] and self._widths[column] < MAX_WIDTH:
                self._widths[column] = min(MAX_WIDTH, _length(value))
                grew = True
            self._strips.pop(key, None)
            self.refresh_line(self._index[key] + 1)
        if grew:
            self._relayout()

    def add_new_columns(self, columns: list[str]) -> None:
        """Columns for metrics or params seen for the first time."""
        if any(c not in self._widths for c in columns):
            self.show()

    def place_rows(self) -> None:
        """Rows appeared, vanished or moved between groups: lay out again, keeping the cursor."""
        self.show()

    # ------------------------------------------------------------ rendering

    def _note_window(self, scroll_x: int, width: int) -> None:
        """Rows are drawn only across the columns in view: a new view makes them stale.

        With a hundred metric columns, drawing every cell of an updated row cost ~2 ms a
        row, so a frame with 40 changed rows took 40 ms; only the dozen columns in view are
        drawn now, the rest is blank space that the view never shows.
        """
        window = (scroll_x, width, self._layout)
        if window == self._window:
            return
        self._window = window
        fixed = sum(self._widths.get(c, 0) + GAP for c in self._columns[:FIXED])
        start, end = fixed + scroll_x, scroll_x + width
        visible = set(range(min(FIXED, len(self._columns))))
        position = fixed
        for index in range(FIXED, len(self._columns)):
            span = self._widths.get(self._columns[index], 0) + GAP
            if position < end and position + span > start:
                visible.add(index)
            position += span
        if visible != self._visible:
            self._visible = frozenset(visible)
            self._strips.clear()
            self._header = None

    def render_lines(self, crop: Region) -> list[Strip]:
        # Rows coming into view are drawn before any line is, so that columns they widen
        # are wide for the whole frame, not from the middle of it.
        top = int(self.scroll_offset.y)
        self._draw_rows(top + max(crop.y - 1, 0), top + crop.bottom)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_size.width
        base = self.rich_style
        self._note_window(int(scroll_x), width)
        group = False
        if y == 0:
            full = self._header_strip()
        else:
            index = scroll_y + y - 1
            if index >= len(self._order):
                if index == 1 and not self._order:
                    return self._empty_hint(width)
                return Strip.blank(width, base)
            full = self._row_strip(self._order[index], index == self.cursor_row)
            # A group's title has no columns to keep in line with: it stays whole, where
            # scrolled like a row it was cut at the name column's edge.
            group = self._order[index].startswith(GROUP_PREFIX)
        fixed = sum(self._widths.get(c, 0) + GAP for c in self._columns[:FIXED])
        if scroll_x == 0 or fixed >= width or group:
            return full.crop_extend(0, width, base)
        left = full.crop_extend(0, fixed, base)
        right = full.crop_extend(fixed + scroll_x, scroll_x + width, base)
        return Strip.join([left, right])

    def _empty_hint(self, width: int) -> Strip:
        if not self.loaded:
            hint = (
                "The server does not answer yet: the experiments show once it does."
                if self.offline
                else "Loading the experiments…"
            )
        elif self.state.live_only:
            hint = "No running experiments. Press l to show all."
        elif self.state.name_filter:
            hint = f"No experiment name contains {self.state.name_filter!r}."
        else:
            hint = "No experiments yet: point DVCLive here (DVC_STUDIO_URL, DVC_STUDIO_TOKEN)."
        text = Text(f"  {hint}", style="dim", no_wrap=True, end="")
        strip = Strip(list(text.render(self.app.console))).apply_style(self.rich_style)
        return strip.crop_extend(0, width, self.rich_style)

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self.get_component_rich_style("experiment-table--header")
            cells: dict[str, Cell] = {c: self._label(c, self._widths.get(c)) for c in self._columns}
            self._header = self._line(cells, style, None)
        return self._header

    def _row_strip(self, key: str, is_cursor: bool) -> Strip:
        if is_cursor:
            row_style = self.get_component_rich_style("experiment-table--cursor-row")
            cursor_style = self.get_component_rich_style("experiment-table--cursor")
            return self._line(self._row_cells(key), row_style, cursor_style)
        strip = self._strips.get(key)
        if strip is None:
            style = self.rich_style
            if key.startswith(GROUP_PREFIX):
                style = style + self.get_component_rich_style("experiment-table--group")
            strip = self._strips[key] = self._line(self._row_cells(key), style, None)
        return strip

    def _line(self, cells: dict[str, Cell], row_style: Style, cursor_style: Style | None) -> Strip:
        line = Text(no_wrap=True, end="")
        group_row = "status" not in cells and "name" in cells
        visible = self._visible
        blank = 0
        for index, column in enumerate(self._columns):
            width = self._widths[column]
            if index not in visible and not (group_row and index < 4):
                blank += width + GAP  # out of view: only its width matters
                continue
            if blank:
                line.append(" " * blank)
                blank = 0
            value = cells.get(column, "")
            text = value.copy() if isinstance(value, Text) else Text(value)
            if group_row and column == "name":
                text.truncate(
                    width + sum(self._widths[c] + GAP for c in self._columns[2:4]),
                    overflow="ellipsis",
                )
            else:
                text.truncate(width, overflow="ellipsis", pad=True)
            text.pad_left(1)
            text.pad_right(GAP - 1)
            if cursor_style is not None and index == self.cursor_column:
                text.stylize(cursor_style)
            line.append_text(text)
        if blank:
            line.append(" " * blank)
        segments = list(line.render(self.app.console))
        return Strip(segments).apply_style(row_style).simplify()

    # ------------------------------------------------------------ cursor

    @property
    def row_count(self) -> int:
        """How many lines (group rows included) the table has."""
        return len(self._order)

    def move_cursor(
        self, row: int | None = None, column: int | None = None, *, placed: bool = True
    ) -> None:
        """Put the cursor on a row and column, scrolling it into view.

        ``placed``: the user (or a caller acting for them) chose this row, so later
        re-layouts keep the cursor on it rather than on the first experiment.
        """
        if placed and row is not None:
            self.cursor_placed = True
        old = self.cursor_row
        if row is not None:
            self.cursor_row = max(0, min(row, len(self._order) - 1))
        if column is not None:
            self.cursor_column = max(0, min(column, len(self._columns) - 1))
        for index in {old, self.cursor_row}:
            if index < len(self._order):
                self.refresh_line(index + 1)
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        height = max(1, self.scrollable_size.height - 1)
        y = self.scroll_offset.y
        if self.cursor_row < y:
            y = self.cursor_row
        elif self.cursor_row >= y + height:
            y = self.cursor_row - height + 1
        # The rows coming into view may widen columns: draw them before placing x.
        self._draw_rows(y, y + height)
        x = self.scroll_offset.x
        if self._columns:
            # The view starts where a column does (none cut in half on the left), with the
            # cursor's column whole in it, as near where it was as can be: a rebuild that
            # changed widths under the view (the Live filter's fewer rows) left it inside
            # a column.
            starts = [0]
            for column in self._columns[FIXED:]:
                starts.append(starts[-1] + self._widths[column] + GAP)
            fits = starts
            if self.cursor_column >= FIXED:
                fixed = sum(self._widths[c] + GAP for c in self._columns[:FIXED])
                visible = max(1, self.scrollable_size.width - fixed)
                start = starts[self.cursor_column - FIXED]
                end = starts[self.cursor_column - FIXED + 1]
                fits = [s for s in starts if end - visible <= s <= start] or [start]
            reachable = [s for s in fits if s <= self.max_scroll_x] or fits[:1]
            x = min(reachable, key=lambda s: abs(s - x))
        self.scroll_to(x, y, animate=False, immediate=True)

    def action_move(self, rows: int, columns: int) -> None:
        self.move_cursor(row=self.cursor_row + rows, column=self.cursor_column + columns)

    def action_page(self, direction: int) -> None:
        self.move_cursor(row=self.cursor_row + direction * max(1, self.scrollable_size.height - 2))

    def action_edge(self, direction: int) -> None:
        self.move_cursor(row=0 if direction < 0 else len(self._order) - 1)

    def action_select_cell(self) -> None:
        key = self.current_key()
        if key is not None and self._columns:
            self.post_message(self.CellSelected(key, self._columns[self.cursor_column]))

    class SortRequested(Message):
        """A click on a column header."""

        def __init__(self, column: int) -> None:
            super().__init__()
            self.column = column

    def on_click(self, event: events.Click) -> None:
        column = self._column_at(event.x)
        if event.y == 0:
            self.move_cursor(column=column)
            self.post_message(self.SortRequested(column))
            return
        self.move_cursor(row=self.scroll_offset.y + event.y - 1, column=column)
        if event.chain > 1:
            self.action_select_cell()

    def _column_at(self, x: int) -> int:
        column = len(self._columns) - 1
        fixed = sum(self._widths[c] + GAP for c in self._columns[:FIXED])
        offset = 0 if x < fixed else self.scroll_offset.x
        position = 0
        for index, name in enumerate(self._columns):
            if index == FIXED:
                position -= offset
            position += self._widths[name] + GAP
            if x < position:
                column = index
                break
        return column

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    def current_key(self) -> str | None:
        """Row key under the cursor."""
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)]

    def current_experiment_id(self) -> int | None:
        """Experiment under the cursor (None on a group row)."""
        key = self.current_key()
        if key is None or key.startswith(GROUP_PREFIX):
            return None
        return int(key)

    def current_group(self) -> tuple[str, list[int]] | None:
        """(baseline sha, its experiments) when the cursor is on a group header."""
        key = self.current_key()
        if key is None or not key.startswith(GROUP_PREFIX):
            return None
        return key[len(GROUP_PREFIX) :], list(self._groups.get(key, []))

    def visible_experiment_ids(self) -> list[int]:
        """Experiments in the rows currently scrolled into view."""
        top = int(self.scroll_offset.y)
        keys = self._order[top : top + max(1, self.scrollable_size.height - 1)]
        return [int(k) for k in keys if not k.startswith(GROUP_PREFIX)]

    def shown_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    def visible_region(self) -> Region:
        """The content region in view (for tests and benchmarks)."""
        return Region(*self.scroll_offset, *self.scrollable_size)


def _same(new: Cell, old: Cell | None) -> bool:
    # Rich's Text equality ignores the base style: a delta turning from better to worse
    # keeps its text and must still be redrawn.
    if isinstance(new, Text) and isinstance(old, Text):
        return new == old and new.style == old.style
    return new == old


def _length(value: Cell) -> int:
    return value.cell_len if isinstance(value, Text) else cell_len(value)

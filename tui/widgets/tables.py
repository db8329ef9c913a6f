"""What every screen asks of its DataTables."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


def cursor_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor; None when the table has no rows."""
    if not table.row_count:
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


PAD_COLUMN = "pad"
"""The key of the blank last column that lets the last real one scroll to the left edge."""


class WholeColumnTable(DataTable[Any]):
    """A row-cursor table that scrolls sideways a whole column at a time.

    DataTable scrolls by cells: a run's column half under the fixed names read ``0.03``
    as ``3`` and ``wider-net`` as ``er-net``. Here ← and → (and a resize) leave the view
    starting where a column does."""

    _going_to: int | None = None
    """The column a ``scroll_to_column`` still on its way will start the view at."""

    def _column_starts(self) -> list[int]:
        """Where each scrolling column begins, relative to the first one (blank room
        keyed ``PAD_COLUMN`` after the last is no column to scroll to)."""
        starts = [0]
        for column in self.ordered_columns[self.fixed_columns :]:
            if column.key.value == PAD_COLUMN:
                break
            starts.append(starts[-1] + column.get_render_width(self))
        return starts[:-1]

    def snap(self, direction: int) -> None:
        """Scroll to the start of the next column to the right (``direction`` 1) or to the
        left (-1) of the view's left edge."""
        self._going_to = None  # the user's key wins over a rebuild's scroll on its way
        x = round(self.scroll_x)
        starts = self._column_starts()
        if direction > 0:
            target = next((s for s in starts if s > x), x)
        else:
            target = max((s for s in starts if s < x), default=0)
        self.scroll_to(x=min(target, max(self.max_scroll_x, 0)), animate=False, immediate=True)

    def fit_pad(self) -> None:
        """Give the table blank room after its last column, as much as lets that column
        scroll to the left edge whole, and none when every column is in view (no
        scrollbar for nothing). Call once the columns have their widths."""
        if PAD_COLUMN in self.columns:
            self.remove_column(PAD_COLUMN)
        widths = [c.get_render_width(self) for c in self.ordered_columns]
        fixed, scrolling = widths[: self.fixed_columns], widths[self.fixed_columns :]
        room = self.scrollable_content_region.width
        if scrolling and sum(widths) > room:
            pad = room - sum(fixed) - scrolling[-1] - 2 * self.cell_padding
            if pad > 0:
                self.add_column("", key=PAD_COLUMN, width=pad, default="")

    def left_column(self) -> int:
        """How many scrolling columns lie left of the view (to keep it through a rebuild)."""
        if self._going_to is not None:  # (a rebuild meanwhile put the view back at 0)
            return self._going_to
        x = round(self.scroll_x)
        return sum(1 for start in self._column_starts() if start < x)

    def scroll_to_column(self, index: int) -> None:
        """Start the view at the ``index``-th scrolling column (the last, if fewer), once
        the columns have their widths (after a rebuild: on the next refresh)."""
        self._going_to = index
        self.call_after_refresh(self._fit_then_scroll, index)

    def _fit_then_scroll(self, index: int) -> None:
        if self._going_to == index:
            self.fit_pad()
            self.call_after_refresh(self._scroll_to_start, index)  # once the pad is measured

    def _scroll_to_start(self, index: int) -> None:
        if self._going_to != index:
            return  # a newer one is on its way
        self._going_to = None
        starts = self._column_starts()
        target = starts[min(index, len(starts) - 1)] if starts else 0
        self.scroll_to(x=min(target, max(self.max_scroll_x, 0)), animate=False, immediate=True)
        # Drawn again whether or not the scroll moved: lines drawn while the rebuilt columns
        # were still being measured (scrolled, without the fixed names) stayed on screen.
        self.refresh()

    def action_cursor_right(self) -> None:
        if self.cursor_type == "row":
            self.snap(1)
        else:
            super().action_cursor_right()

    def action_cursor_left(self) -> None:
        if self.cursor_type == "row":
            self.snap(-1)
        else:
            super().action_cursor_left()

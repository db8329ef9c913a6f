"""Plain-text formatting of values for cells and charts (no Textual here)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.cells import cell_len as _rich_cell_len
from rich.cells import get_character_cell_size

from shared.text import printable
from shared.values import parse_number

STATUS_GLYPH = {"running": "●", "completed": "✓", "failed": "✗", "stopped": "■"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


MAX_TEXT = 200
"""The most characters of a text value the TUI draws."""


class _Null:
    """A param set to null in its file (``null``, YAML's ``~``): not a missing one."""

    def __repr__(self) -> str:
        return "null"


NULL = _Null()


def param_value(params: dict[str, Any], name: str) -> Any:
    """A run's param by name: ``None`` if it has none, ``NULL`` if it is null."""
    value = params.get(name)
    return NULL if value is None and name in params else value


def value_text(value: Any) -> str:
    """A metric or param value as a short string."""
    if value is None:
        return ""
    if value is NULL:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, dict)):
        # As the params file spells it (JSON), not Python's repr: [1, 'two'] and None.
        value = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    # Text (a `dvc exp run` metrics file may hold some) on one line, and not megabytes of it.
    return printable(head_cut(str(value), MAX_TEXT))


def tail_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, keeping its end (a repository URL's end names
    the repository): ``…/livestudio/demo-mnist.git``."""
    if cell_len(text) <= width:
        return text
    return "…" + _cells_from_end(text, width - 1) if width >= 1 else ""


def head_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, keeping its start: ``a-rather-long-na…``."""
    if cell_len(text) <= width:
        return text
    return _cells_from_start(text, width - 1) + "…" if width >= 1 else ""


def middle_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, keeping both ends (where long metric names
    differ): ``val/very_lo…ponent_end``."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[: max(width, 0)]
    head = _cells_from_start(text, (width - 1) // 2)
    tail = _cells_from_end(text[len(head) :], width - 1 - cell_len(head))
    return head + "…" + tail


def cell_len(text: str) -> int:
    """The cells ``text`` takes in a terminal (its length, for ASCII: the usual case)."""
    return len(text) if text.isascii() else _rich_cell_len(text)


# Counted in terminal cells, not characters: a CJK or emoji character takes two, and a
# name cut by characters ran into the next column (or pushed a chart's figures out).
def _cells_from_start(text: str, cells: int) -> str:
    """The longest start of ``text`` that fits in ``cells``."""
    used = 0
    for index, char in enumerate(text):
        used += get_character_cell_size(char)
        if used > cells:
            return text[:index]
    return text


def _cells_from_end(text: str, cells: int) -> str:
    """The longest end of ``text`` that fits in ``cells``."""
    used = 0
    for index in range(len(text) - 1, -1, -1):
        used += get_character_cell_size(text[index])
        if used > cells:
            return text[index + 1 :]
    return text


AGO_EVERY = 5.0
"""Seconds between re-tellings of "how long ago" on screens that show it."""


def ago(moment: datetime, now: datetime) -> str:
    """``now``, ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 2:
        return "now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def time_ago(moment: datetime, now: datetime) -> str:
    """``now``, ``42s ago``, ``5m ago``… (for a sentence or a "since" column)."""
    short = ago(moment, now)
    return short if short == "now" else f"{short} ago"


def sparkline(values: Sequence[Any], width: int = 10) -> str:
    """The values' trend in ``width`` block characters (NaN shown as ``·``).

    More values than characters are averaged in equal runs, so the line shows the whole
    history's shape: the last ``width`` values alone, scaled to their own range, made a
    converged loss's noise look like wild swings.
    """
    numbers = [parse_number(v) for v in values]
    # A run that just diverged shows it at once: its newest value is never averaged away.
    diverged = bool(numbers) and (numbers[-1] is None or not math.isfinite(numbers[-1]))
    if len(numbers) > width:
        numbers = [
            _mean(numbers[i * len(numbers) // width : (i + 1) * len(numbers) // width])
            for i in range(width)
        ]
    finite = [v for v in numbers if v is not None and math.isfinite(v)]
    if not finite:
        return "·" * len(numbers)
    low, high = min(finite), max(finite)
    span = high - low
    chars = []
    for v in numbers:
        if v is None or not math.isfinite(v):
            chars.append("·")
        elif span == 0:
            chars.append(SPARK_BLOCKS[3])
        else:
            chars.append(SPARK_BLOCKS[round((v - low) / span * (len(SPARK_BLOCKS) - 1))])
    if diverged:
        chars[-1] = "·"
    return "".join(chars)


def _mean(run: list[float | None]) -> float | None:
    """The mean of a run's finite values; ``None`` (shown ``·``) when it has none."""
    finite = [v for v in run if v is not None and math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else None


def sort_key(value: Any) -> tuple[int, Any]:
    """Numbers before strings before blanks, NaN after numbers."""
    number = parse_number(value)
    if number is not None and not math.isnan(number):
        return (0, number)
    if number is not None:
        return (1, 0)
    if value is None or value is NULL or value == "":
        return (3, "")
    return (2, str(value))


LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "perplexity", "time", "latency")


def lower_is_better(metric: str) -> bool:
    """A guess from the name: losses and errors are minimised, the rest maximised."""
    name = metric.lower()
    return any(word in name for word in LOWER_IS_BETTER)


def shell_fold(line: str, width: int) -> list[str]:
    """``line`` in pieces of at most ``width`` columns where it can be, each but the last
    ending in a backslash (the shell joins a backslash and a newline), folded between
    words only: copied with the mouse, a continued line brings the indentation it is drawn
    with, harmless between words, but a token folded inside pasted as two words (a cut
    token exported, and a stray variable). A word wider than ``width`` stays whole, for
    the caller to cut where it shows it."""
    pieces = []
    while width >= 2 and len(line) > width:
        space = line.rfind(" ", 1, width - 1)  # (the backslash goes after it)
        if space <= 0:
            break
        pieces.append(line[: space + 1] + "\\")
        line = line[space + 1 :]
    return [*pieces, line]

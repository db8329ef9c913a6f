"""How a chart is drawn, as plain data: smoothing, log scale, the step cursor.

No Textual here: the plots screen keeps a ``PlotView`` and every chart draws itself from it,
and the functions are tested on their own.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.values import parse_number
from tui.format import value_text

SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)
"""Exponential smoothing weights, from none to heavy (``+``/``-`` step through them)."""


@dataclass
class PlotView:
    """What every chart of the plots screen shows."""

    smoothing: int = 0
    """Index into ``SMOOTHING``."""
    log_scale: bool = False
    cursor: int | None = None
    """The step the cursor is on (None: no cursor)."""
    wall_time: bool = False
    """The x axis shows when each step arrived instead of the step."""
    exact: dict[tuple[int, str], tuple[int, Any] | None] = field(default_factory=dict)
    """(experiment, metric) → its exact point at the cursor, read from the server (the
    lines may be downsampled: a bucket's point is not the value at the cursor's step)."""
    exact_at: int | None = None
    """The cursor step ``exact`` holds the points of."""

    @property
    def weight(self) -> float:
        """The smoothing weight in use."""
        return SMOOTHING[self.smoothing]

    def smoother(self, more: bool) -> None:
        """One level more (or less) smoothing."""
        self.smoothing = max(0, min(len(SMOOTHING) - 1, self.smoothing + (1 if more else -1)))

    def move_cursor(self, steps: list[int], direction: int) -> None:
        """Put the cursor on the previous or next step that has data (the last one at first)."""
        if not steps:
            return
        if self.cursor is None:
            self.cursor = steps[-1]
            return
        if direction < 0:
            earlier = [s for s in steps if s < self.cursor]
            self.cursor = earlier[-1] if earlier else steps[0]
        else:
            later = [s for s in steps if s > self.cursor]
            self.cursor = later[0] if later else steps[-1]


DRAW_LIMIT = 1e300
"""The largest magnitude a chart draws: plotext scales values by 1e8 on the way, and a
logged 1.8e308 (a float's largest) overflowed to inf and took the TUI down."""


def drawable(points: list[tuple[int, Any]], log_scale: bool) -> tuple[list[int], list[float]]:
    """Steps and values a chart can draw: finite, within ``DRAW_LIMIT``, and positive on a
    log scale."""
    steps, values = [], []
    for step, value in points:
        if isinstance(value, int | float) and math.isfinite(value) and abs(value) <= DRAW_LIMIT:
            if log_scale and value <= 0:
                continue
            steps.append(step)
            values.append(float(value))
    return steps, values


def nonfinite(points: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    """The steps whose value is NaN or infinite, each with its spelling (``nan``, ``inf``,
    ``-inf``): a line cannot draw them, so the chart marks them instead of dropping them."""
    found = []
    for step, value in points:
        number = parse_number(value)
        if number is not None and not math.isfinite(number):
            found.append((step, "nan" if math.isnan(number) else "inf" if number > 0 else "-inf"))
    return found


def too_large(points: list[tuple[int, Any]]) -> list[tuple[int, str]]:
    """The steps whose finite value is beyond ``DRAW_LIMIT``, each with where the chart
    marks it (``+``: the top edge, ``-``: the bottom), as it marks ±inf."""
    return [
        (step, "+" if value > 0 else "-")
        for step, value in points
        if isinstance(value, int | float) and math.isfinite(value) and abs(value) > DRAW_LIMIT
    ]


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average, debiased at the start (as TensorBoard smooths)."""
    if weight <= 0:
        return list(values)
    out, last, scale = [], 0.0, 0.0
    for value in values:
        last = last * weight + (1 - weight) * value
        scale = scale * weight + (1 - weight)
        out.append(last / scale)
    return out


def value_at(points: list[tuple[int, Any]], step: int) -> Any:
    """The value at ``step``, or at the last step before it; None before the first."""
    found = point_at(points, step)
    return None if found is None else found[1]


def point_at(points: list[tuple[int, Any]], step: int) -> tuple[int, Any] | None:
    """The point at ``step``, or the last one before it; None before the first."""
    found = None
    for point in points:
        if point[0] > step:
            break
        found = point
    return found


def cursor_text(
    points: list[tuple[int, Any]],
    step: int,
    exact: tuple[int, Any] | Literal[False] | None = False,
) -> str:
    """A line's value at the step cursor, saying from which step it is when not that one
    (a run that logs less often, or has not got that far): ``0.99 (at 46)``; ``-`` before
    its first point. ``exact``: the point the server read at that step (None: it has none
    there or before), else (False) the drawn line's, which may be a downsampled one's."""
    found = point_at(points, step) if exact is False else exact
    if found is None:
        return "-"
    at, value = found
    return value_text(value) if at == step else f"{value_text(value)} (at {at})"


def thin(xs: list[float], ys: list[float], limit: int) -> tuple[list[float], list[float]]:
    """At most about ``limit`` points of a line, keeping each bucket's lowest and highest
    (as the server downsamples): a run's live points are kept whole, but a terminal chart
    has a few hundred cells, and drawing every one of 20,000 points made each redraw slow."""
    if len(xs) <= limit or limit < 4:
        return xs, ys
    size = math.ceil(len(xs) / (limit // 2))
    out_x: list[float] = []
    out_y: list[float] = []
    for start in range(0, len(xs), size):
        end = min(start + size, len(xs))
        low = min(range(start, end), key=ys.__getitem__)
        high = max(range(start, end), key=ys.__getitem__)
        for i in sorted({low, high}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    if out_x[-1] != xs[-1]:  # the newest point always shows
        out_x.append(xs[-1])
        out_y.append(ys[-1])
    return out_x, out_y


DASHES = 30


def dashes(
    xs: list[float], ys: list[float], count: int = DASHES
) -> list[tuple[list[float], list[float]]]:
    """A line cut into ``count`` dashes with gaps between (the baseline is drawn so).

    Dashes are cut along x, interpolating their ends, so a line of three points is as
    dashed as one of a thousand; the points inside a dash are kept.
    """
    if len(xs) < 2 or xs[-1] == xs[0]:
        return [(list(xs), list(ys))]
    low, high = xs[0], xs[-1]
    width = (high - low) / (2 * count - 1)

    def at(x: float) -> float:
        i = min(max(bisect.bisect_right(xs, x), 1), len(xs) - 1)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    parts = []
    for k in range(count):
        a, b = low + 2 * k * width, min(high, low + (2 * k + 1) * width)
        inside = xs[bisect.bisect_right(xs, a) : bisect.bisect_left(xs, b)]
        segment = [a, *inside, b]
        parts.append((segment, [at(x) for x in segment]))
    return parts


def duration_text(seconds: float) -> str:
    """``45s``, ``12m``, ``1h30m``: a tick label on a wall-time axis."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


_DIGITS = re.compile(r"[0-9]+")


def family(name: str) -> str:
    """What a numbered name is one of: ``img/#.png`` for ``img/12.png``."""
    return _DIGITS.sub("#", name)


def charted_first(names: list[str], room: int) -> list[str]:
    """The ``room`` series to chart out of ``names`` (in their order): series of their own
    before numbered families (``layer_0/grad`` … ``layer_99/grad``), which fill what is
    left. Cut in name order, 100 of 103 charted were a family's, without the loss."""
    members = Counter(family(name) for name in names)
    ranked = sorted(names, key=lambda name: members[family(name)] > 1)
    return ranked[:room]


def images_shown_first(paths: list[str], room: int) -> list[str]:
    """The ``room`` images to show of ``paths`` (oldest first, as they are given): the
    newest of each family (``img/#.png``, ``photo.jpg``) first, then the newest of the
    rest; oldest first. By age alone, a run logging ``img/{step}.png`` every step pushed
    its one ``photo.jpg`` out."""
    position = {path: i for i, path in enumerate(paths)}
    heads = sorted({family(p): p for p in paths}.values(), key=position.__getitem__)
    kept = set(heads[-room:]) if room > 0 else set()
    left = room - len(kept)
    if left > 0:
        kept.update([p for p in paths if p not in kept][-left:])
    return [path for path in paths if path in kept]

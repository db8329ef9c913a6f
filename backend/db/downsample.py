"""Shape-preserving downsampling of a series, next to the data.

Each output bucket of steps keeps its lowest point, its highest point and its first NaN,
so spikes and divergence survive; the first and last points are always kept, so the
latest value never disappears from a chart. Short series are bucketed straight from
their points; long ones from the per-block summaries the writer keeps (``point_blocks``),
plus the points of the block still being written, so a million-point series costs a few
thousand rows instead of a full scan.
"""

from __future__ import annotations

import math
from typing import Any

from backend.db.connection import Reader, is_postgres
from backend.db.series import BLOCK_BITS, find_series

Point = tuple[int, float | None]

# Two separate queries: each is one index lookup, where MIN and MAX together scan.
_FIRST = "SELECT MIN(step) FROM points WHERE series_id = ?"
_LAST = "SELECT MAX(step) FROM points WHERE series_id = ?"

# Straight from the points, for series whose buckets are narrower than a few blocks.
_FROM_POINTS = """
WITH p AS (SELECT step, value, (step - :lo) * :nb / (:hi - :lo + 1) AS b FROM points
           WHERE series_id = :sid AND step BETWEEN :a AND :z)
SELECT step, value FROM (
    SELECT step, MIN(value) AS value FROM p WHERE value IS NOT NULL GROUP BY b
    UNION SELECT step, MAX(value) FROM p WHERE value IS NOT NULL GROUP BY b
    UNION SELECT MIN(step), NULL FROM p WHERE value IS NULL GROUP BY b
) ORDER BY step
"""

_FROM_POINTS_PG = """
WITH p AS (SELECT step, value, (step - :lo) * :nb / (:hi - :lo + 1) AS b FROM points
           WHERE series_id = :sid AND step BETWEEN :a AND :z)
SELECT step, value FROM (
    (SELECT DISTINCT ON (b) step, value FROM p WHERE value IS NOT NULL ORDER BY b, value, step)
    UNION (SELECT DISTINCT ON (b) step, value FROM p WHERE value IS NOT NULL
           ORDER BY b, value DESC, step)
    UNION SELECT MIN(step), NULL FROM p WHERE value IS NULL GROUP BY b
) AS d ORDER BY step
"""
"""The same on PostgreSQL, which has no bare columns beside an aggregate."""

_BLOCKS = (
    "SELECT block, min_step, min_value, max_step, max_value, nan_step FROM point_blocks"
    " WHERE series_id = ? AND block < ? ORDER BY block"
)
_TAIL = "SELECT step, value FROM points WHERE series_id = ? AND step >= ? ORDER BY step"
_AT = "SELECT value FROM points WHERE series_id = ? AND step = ?"
SCAN_STEPS = 1 << 14
"""Steps bucketed per query when bucketing straight from the points (see ``_from_points``)."""
_COUNT_UP_TO = "SELECT count(*) FROM (SELECT 1 FROM points WHERE series_id = ? LIMIT ?) AS p"


async def downsampled(
    db: Reader, experiment_id: int, name: str, max_points: int
) -> list[Point] | None:
    """At most ``max_points`` points of the series, or ``None`` when it is short enough."""
    series = await find_series(db, experiment_id, name)
    if series is None:
        return None
    lo, hi = await _scalar(db, _FIRST, series), await _scalar(db, _LAST, series)
    if lo is None or hi is None or hi - lo + 1 <= max_points:
        return None  # steps are unique: the series has at most max_points points
    # Sparse steps (logged every 1,000 steps, say) span far more than they number: a
    # series that fits is sent whole, not bucketed (its points shared few buckets).
    async with db.execute(_COUNT_UP_TO, (series, max_points + 1)) as cur:
        if (await cur.fetchone())[0] <= max_points:
            return None
    ends = {(lo, await _value_at(db, series, lo)), (hi, await _value_at(db, series, hi))}
    # Two points a bucket (its low and its high) fill the budget; a NaN in many buckets
    # could overflow it, and then the buckets are made wider.
    for per_bucket in (2, 3):
        buckets = max(1, (max_points - 2) // per_bucket)
        width = (hi - lo + 1) / buckets
        points = None
        if width >= 4 << BLOCK_BITS:
            points = await _from_blocks(db, series, lo, hi, buckets, width)
        if points is None:
            points = await _from_points(db, series, lo, hi, buckets)
        merged = sorted(set(points) | ends, key=lambda p: p[0])
        if len(merged) <= max_points:
            return merged
    return merged[: max_points - 1] + merged[-1:]


async def _scalar(db: Reader, sql: str, series: int) -> Any:
    async with db.execute(sql, (series,)) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


async def _from_points(db: Reader, series: int, lo: int, hi: int, buckets: int) -> list[Point]:
    """Bucket straight from the points, a part of the steps per query.

    One query over a million points held the read connection (and so every other
    request's reads) for over a second; in parts of whole buckets (a bucket's low and
    high are never split between two queries), other reads go in between.
    """
    sql = _FROM_POINTS_PG if is_postgres(db) else _FROM_POINTS
    span = hi - lo + 1
    per_part = max(1, buckets * SCAN_STEPS // span)
    points: list[Point] = []
    for first in range(0, buckets, per_part):
        last = min(buckets, first + per_part)
        params = {
            "sid": series,
            "lo": lo,
            "hi": hi,
            "nb": buckets,
            "a": lo + _bucket_start(first, span, buckets),
            "z": lo + _bucket_start(last, span, buckets) - 1,
        }
        async with db.execute(sql, params) as cur:
            points.extend((r[0], r[1]) for r in await cur.fetchall())
    return points


def _bucket_start(bucket: int, span: int, buckets: int) -> int:
    """The first step (from the series' first) that ``(step - lo) * nb / span`` puts in
    ``bucket``: the least ``d`` with ``d * buckets >= bucket * span``."""
    return -(-bucket * span // buckets)


async def _from_blocks(
    db: Reader, series: int, lo: int, hi: int, buckets: int, width: float
) -> list[Point] | None:
    sealed = hi >> BLOCK_BITS
    async with db.execute(_BLOCKS, (series, sealed)) as cur:
        blocks = list(await cur.fetchall())
    # Only blocks holding points have summaries, and the first point's block always
    # does; when it has none, the series predates summaries: scan instead.
    if sealed > lo >> BLOCK_BITS and (not blocks or blocks[0][0] != lo >> BLOCK_BITS):
        return None
    best: dict[int, list[Any]] = {}

    def take(step: int, value: float | None, kind: str) -> None:
        bucket = min(buckets - 1, int((step - lo) / width))
        slot = best.setdefault(bucket, [None, None, None])
        if kind == "nan":
            if slot[2] is None or step < slot[2]:
                slot[2] = step
        elif kind == "min":
            if slot[0] is None or value < slot[0][1]:
                slot[0] = (step, value)
        elif slot[1] is None or value > slot[1][1]:
            slot[1] = (step, value)

    for _, min_step, min_value, max_step, max_value, nan_step in blocks:
        if min_step is not None:
            take(min_step, min_value, "min")
            take(max_step, max_value, "max")
        if nan_step is not None:
            take(nan_step, None, "nan")
    async with db.execute(_TAIL, (series, sealed << BLOCK_BITS)) as cur:
        for step, value in await cur.fetchall():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                take(step, None, "nan")
            else:
                take(step, value, "min")
                take(step, value, "max")
    points: list[Point] = []
    for low, high, nan in best.values():
        points.extend(p for p in (low, high) if p is not None)
        if nan is not None:
            points.append((nan, None))
    return points


async def _value_at(db: Reader, series: int, step: int) -> float | None:
    async with db.execute(_AT, (series, step)) as cur:
        row = await cur.fetchone()
    return row[0] if row else None

"""Shape-preserving downsampling of a series, computed by SQLite next to the data."""

from __future__ import annotations

import aiosqlite

# Per bucket of steps: the lowest point, the highest point and one NaN (stored as NULL)
# if there is any, so spikes and divergence survive. The first and the last point are
# always kept, so the latest value never disappears from a chart.
_BUCKETS = """
WITH s AS (SELECT id FROM series WHERE experiment_id = :exp AND name = :name),
r AS (SELECT MIN(step) AS lo, MAX(step) AS hi, COUNT(*) AS n FROM points
      WHERE series_id = (SELECT id FROM s)),
p AS (SELECT step, value, (step - r.lo) * :nb / (r.hi - r.lo + 1) AS b FROM points, r
      WHERE series_id = (SELECT id FROM s))
SELECT step, value FROM (
    SELECT step, MIN(value) AS value FROM p WHERE value IS NOT NULL GROUP BY b
    UNION SELECT step, MAX(value) FROM p WHERE value IS NOT NULL GROUP BY b
    UNION SELECT MIN(step), NULL FROM p WHERE value IS NULL GROUP BY b
    UNION SELECT step, value FROM p WHERE step = (SELECT lo FROM r) OR step = (SELECT hi FROM r)
) ORDER BY step
"""

_COUNT = (
    "SELECT COUNT(*) FROM points WHERE series_id ="
    " (SELECT id FROM series WHERE experiment_id = ? AND name = ?)"
)


async def downsampled(
    db: aiosqlite.Connection, experiment_id: int, name: str, max_points: int
) -> list[tuple[int, float | None]] | None:
    """At most ``max_points`` points of the series, or ``None`` when it is small enough as is."""
    async with db.execute(_COUNT, (experiment_id, name)) as cur:
        row = await cur.fetchone()
    if row is None or row[0] <= max_points:
        return None
    for per_bucket in (2, 3):
        buckets = max(1, (max_points - 2) // per_bucket)
        async with db.execute(_BUCKETS, {"exp": experiment_id, "name": name, "nb": buckets}) as cur:
            points = [(r[0], r[1]) for r in await cur.fetchall()]
        if len(points) <= max_points:
            return points
    return points[: max_points - 1] + points[-1:]

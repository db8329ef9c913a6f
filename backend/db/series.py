"""Series points (the points log, block summaries) and images."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from backend.db.common import ts
from backend.db.connection import Conn, Reader, is_postgres
from shared.api import ImageInfo
from shared.values import to_wire


def series_id(conn: Conn, experiment_id: int, name: str) -> int:
    """The id of an experiment's series, created on first use."""
    return int(
        conn.execute(
            "INSERT INTO series (experiment_id, name) VALUES (?, ?)"
            " ON CONFLICT (experiment_id, name) DO UPDATE SET name = excluded.name RETURNING id",
            (experiment_id, name),
        ).fetchone()[0]
    )


BLOCK_BITS = 8
"""Series are summarised in blocks of 2**BLOCK_BITS steps for downsampling."""


_UPSERT_CHUNK = 200  # rows per statement: 4 parameters each, well below SQLite's limit


def upsert_points_many(
    conn: Conn, rows: list[tuple[int, int, float]], now: float
) -> dict[int, list[tuple[int, float | None]]]:
    """Store (series, step, value) rows in few statements; returns new or changed rows by series.

    Unique on (series, step): a re-sent row overwrites and is not reported again.
    """
    changed: dict[int, list[tuple[int, float | None]]] = {}
    # A step sent twice in one post: the later row wins (PostgreSQL refuses to update one
    # row twice in a statement; SQLite applied them in order, to the same effect).
    rows = list({(series, step): (series, step, value) for series, step, value in rows}.values())
    for start in range(0, len(rows), _UPSERT_CHUNK):
        chunk = rows[start : start + _UPSERT_CHUNK]
        sql = (
            "INSERT INTO points (series_id, step, value, arrived_at) VALUES "
            + ",".join(["(?, ?, ?, ?)"] * len(chunk))
            + " ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value,"
            " arrived_at = excluded.arrived_at WHERE points.value IS NOT excluded.value"
            " RETURNING series_id, step, value"
        )
        args = [x for series, step, value in chunk for x in (series, step, value, now)]
        for series, step, value in conn.execute(sql, args).fetchall():
            changed.setdefault(series, []).append((step, value))
    for points in changed.values():
        points.sort()
    return changed


def series_max_step(conn: Conn, series: int) -> int | None:
    """The highest step of a series, filed or still in the log."""
    row = conn.execute(
        "SELECT MAX(top) FROM (SELECT MAX(step) AS top FROM points WHERE series_id = ?"
        " UNION ALL SELECT MAX(step) FROM points_log WHERE series_id = ?) AS tops",
        (series, series),
    ).fetchone()
    return row[0] if row else None


def log_points(conn: Conn, rows: list[tuple[int, int, float]], now: float) -> None:
    """Append (series, step, value) rows to the points log, to be filed later in bulk."""
    for start in range(0, len(rows), _UPSERT_CHUNK):
        chunk = rows[start : start + _UPSERT_CHUNK]
        conn.execute(
            "INSERT INTO points_log (series_id, step, value, arrived_at) VALUES "
            + ",".join(["(?, ?, ?, ?)"] * len(chunk)),
            [x for series, step, value in chunk for x in (series, step, value, now)],
        )


def logged_points(conn: Conn) -> int:
    """How many rows wait in the points log."""
    return int(conn.execute("SELECT COUNT(*) FROM points_log").fetchone()[0])


# Rows up to a bound (the log's order: rowid, or seq on PostgreSQL), oldest first so the
# latest row of a step wins. A WHERE clause also tells SQLite's parser the ON CONFLICT
# belongs to the INSERT.
_FILE_LOG = (
    "INSERT INTO points (series_id, step, value, arrived_at)"
    " SELECT series_id, step, value, arrived_at FROM points_log WHERE rowid <= ? ORDER BY rowid"
    " ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value,"
    " arrived_at = excluded.arrived_at"
)
# PostgreSQL refuses to update one row twice in a statement: keep each step's latest row.
_FILE_LOG_PG = (
    "INSERT INTO points (series_id, step, value, arrived_at)"
    " SELECT DISTINCT ON (series_id, step) series_id, step, value, arrived_at FROM points_log"
    " WHERE seq <= ? ORDER BY series_id, step, seq DESC"
    " ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value,"
    " arrived_at = excluded.arrived_at"
)


def file_points(conn: Conn, at_most: int | None = None) -> int:
    """Move the points log into ``points`` (later rows win) and summarise sealed blocks.

    ``at_most``: file only the oldest rows, about that many, so that filing a large log
    is spread over several transactions instead of pausing one (the writer runs on the
    event loop: every request waits for it). The log holds only rows past their series'
    end, in order (anything else files the whole log first), so the oldest rows are each
    series' lowest steps: every block they seal is complete in ``points``.
    Returns how many rows were filed.
    """
    order = "seq" if is_postgres(conn) else "rowid"
    if at_most is not None and at_most <= 0:
        return 0
    if at_most is None:
        row = conn.execute(f"SELECT MAX({order}) FROM points_log").fetchone()
    else:
        row = (
            conn.execute(
                f"SELECT {order} FROM points_log ORDER BY {order} LIMIT 1 OFFSET ?",
                (at_most - 1,),
            ).fetchone()
            or conn.execute(f"SELECT MAX({order}) FROM points_log").fetchone()
        )
    bound = row[0] if row else None
    if bound is None:
        return 0
    spans = conn.execute(
        "SELECT series_id, MAX(step), COUNT(*),"
        " (SELECT MAX(p.step) FROM points p WHERE p.series_id = l.series_id)"
        f" FROM points_log l WHERE {order} <= ? GROUP BY series_id",
        (bound,),
    ).fetchall()
    # The blocks that hold logged rows, not every block between the lowest and highest
    # step: a series at steps 0 and 10**12 is two blocks, not four billion.
    blocks: dict[int, list[int]] = {}
    for series, block in conn.execute(
        f"SELECT DISTINCT series_id, step >> ? FROM points_log WHERE {order} <= ?",
        (BLOCK_BITS, bound),
    ):
        blocks.setdefault(series, []).append(block)
    conn.execute(_FILE_LOG_PG if is_postgres(conn) else _FILE_LOG, (bound,))
    conn.execute(f"DELETE FROM points_log WHERE {order} <= ?", (bound,))
    for series, high, _, top in spans:
        summarise_changes(conn, series, top, blocks.get(series, ()), high)
    return sum(count for _, _, count, _ in spans)


def summarise_changes(
    conn: Conn,
    series: int,
    old_top: int | None,
    blocks: Iterable[int],
    highest: int,
) -> int:
    """Keep a series' block summaries true after rows landed in ``blocks``.

    ``highest`` is the highest step written. Blocks that just became complete are
    summarised, and so are complete blocks that a late or changed row landed in (rare: a
    re-sent history). Returns the series' new highest step.

    Only blocks that hold points are summarised, so the cost follows the rows written,
    never the span of steps: every step above ``old_top`` is one of the new rows, so the
    one block besides ``blocks`` that can have just become complete is ``old_top``'s own.
    """
    new_top = highest if old_top is None else max(highest, old_top)
    sealed = new_top >> BLOCK_BITS
    stale = {block for block in blocks if block < sealed}
    if old_top is not None and old_top >> BLOCK_BITS < sealed:
        stale.add(old_top >> BLOCK_BITS)
    for block in sorted(stale):
        summarise_block(conn, series, block)
    return new_top


def summarise_block(conn: Conn, series: int, block: int) -> None:
    """(Re)compute the summary of one complete block: its lowest, highest and first NaN point."""
    first, last = block << BLOCK_BITS, ((block + 1) << BLOCK_BITS) - 1
    args = (series, first, last)
    where = "FROM points WHERE series_id = ? AND step BETWEEN ? AND ?"
    # The first step holding the extreme value (what SQLite's bare-column MIN gave).
    low = conn.execute(
        f"SELECT step, value {where} AND value IS NOT NULL ORDER BY value, step LIMIT 1", args
    ).fetchone() or (None, None)
    high = conn.execute(
        f"SELECT step, value {where} AND value IS NOT NULL ORDER BY value DESC, step LIMIT 1",
        args,
    ).fetchone() or (None, None)
    nan = conn.execute(f"SELECT MIN(step) {where} AND value IS NULL", args).fetchone()
    conn.execute(
        "INSERT INTO point_blocks (series_id, block, min_step, min_value, max_step,"
        " max_value, nan_step) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (series_id, block) DO UPDATE SET min_step = excluded.min_step,"
        " min_value = excluded.min_value, max_step = excluded.max_step,"
        " max_value = excluded.max_value, nan_step = excluded.nan_step",
        (series, block, low[0], low[1], high[0], high[1], nan[0]),
    )


def summarise_series(conn: Conn, series: int) -> None:
    """Summarise every complete block of a series (after a bulk load)."""
    top = series_max_step(conn, series)
    if top is None:
        return
    blocks = conn.execute(
        "SELECT DISTINCT step >> ? FROM points WHERE series_id = ? AND step < ?",
        (BLOCK_BITS, series, (top >> BLOCK_BITS) << BLOCK_BITS),
    ).fetchall()
    for (block,) in blocks:
        summarise_block(conn, series, block)


def upsert_image(
    conn: Conn, experiment_id: int, path: str, step: int, png: bytes, now: float
) -> None:
    """Keep the latest image of a path."""
    conn.execute(
        "INSERT INTO images (experiment_id, path, step, png, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (experiment_id, path) DO UPDATE SET step = excluded.step,"
        " png = excluded.png, updated_at = excluded.updated_at",
        (experiment_id, path, step, png, now),
    )


async def series_names(db: Reader, experiment_id: int) -> list[str]:
    """Names of an experiment's series, sorted."""
    async with db.execute(
        "SELECT name FROM series WHERE experiment_id = ? ORDER BY name", (experiment_id,)
    ) as cur:
        return [r[0] for r in await cur.fetchall()]


async def find_series(db: Reader, experiment_id: int, name: str) -> int | None:
    """The id of an experiment's series by name, if it has one."""
    async with db.execute(
        "SELECT id FROM series WHERE experiment_id = ? AND name = ?", (experiment_id, name)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def series_page(
    db: Reader, series: int, after_step: int, limit: int, with_time: bool
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` points of a series past ``after_step``, by step, spelled for JSON
    (see ``wire_points``): ``(step, value)``, or ``(step, value, arrived_at)``.

    By the series' id, a constant: PostgreSQL then walks the (series_id, step) key in
    order; joined by name, it read and sorted the whole rest of the series for each page.
    """
    arrived = ", arrived_at" if with_time else ""
    async with db.execute(
        f"SELECT step, value{arrived} FROM points WHERE series_id = ? AND step > ?"
        " ORDER BY step LIMIT ?",
        (series, after_step, limit),
    ) as cur:
        rows = await cur.fetchall()
    wire = wire_points((r[0], r[1]) for r in rows)
    if not with_time:
        return wire
    return [(step, value, r[2]) for (step, value), r in zip(wire, rows, strict=True)]


async def point_at(db: Reader, series: int, step: int, with_time: bool) -> list[tuple[Any, ...]]:
    """The series' point at ``step``, or the last one before it ([] before its first),
    spelled for JSON as ``series_page``'s points are."""
    arrived = ", arrived_at" if with_time else ""
    async with db.execute(
        f"SELECT step, value{arrived} FROM points WHERE series_id = ? AND step <= ?"
        " ORDER BY step DESC LIMIT 1",
        (series, step),
    ) as cur:
        rows = await cur.fetchall()
    wire = wire_points((r[0], r[1]) for r in rows)
    return [(*w, r[2]) for w, r in zip(wire, rows, strict=True)] if with_time else wire


async def arrival_times(
    db: Reader, experiment_id: int, name: str, steps: list[int]
) -> dict[int, float]:
    """When each of these steps of a series arrived (UNIX time), by step."""
    found: dict[int, float] = {}
    for start in range(0, len(steps), 500):
        chunk = steps[start : start + 500]
        async with db.execute(
            "SELECT p.step, p.arrived_at FROM points p JOIN series s ON s.id = p.series_id"
            " WHERE s.experiment_id = ? AND s.name = ?"
            f" AND p.step IN ({','.join('?' * len(chunk))})",
            (experiment_id, name, *chunk),
        ) as cur:
            found.update({r[0]: r[1] for r in await cur.fetchall()})
    return found


async def images_of(db: Reader, experiment_id: int) -> list[ImageInfo]:
    """The latest image of every path of an experiment."""
    async with db.execute(
        "SELECT path, step, updated_at FROM images WHERE experiment_id = ? ORDER BY path",
        (experiment_id,),
    ) as cur:
        return [
            ImageInfo(path=r["path"], step=r["step"], updated_at=ts(r["updated_at"]))  # type: ignore[arg-type]
            for r in await cur.fetchall()
        ]


async def image_png(db: Reader, experiment_id: int, path: str) -> bytes | None:
    """The PNG bytes of an image."""
    async with db.execute(
        "SELECT png FROM images WHERE experiment_id = ? AND path = ?", (experiment_id, path)
    ) as cur:
        row = await cur.fetchone()
    return bytes(row[0]) if row else None


def wire_points(points: Iterable[tuple[int, float | None]]) -> list[tuple[int, Any]]:
    """Points with NaN/±inf spelled for JSON."""
    # x - x == 0 holds for finite numbers only: the common case costs no function call.
    return [
        (step, value if value is not None and value - value == 0 else to_wire(value))
        for step, value in points
    ]


def delete_some_points(conn: Conn, experiment_id: int, at_most: int) -> int:
    """Delete up to ``at_most`` stored points of an experiment; returns how many (fewer
    than ``at_most``: none are left).

    Deleting an experiment cascades to its points in one statement, about 2 µs a point:
    a run of millions would hold every request for seconds, so its points go first, a
    bounded part per transaction (``services.experiments.delete``).
    """
    deleted = 0
    while deleted < at_most:
        row = conn.execute(
            "SELECT s.id FROM series s WHERE s.experiment_id = ?"
            " AND EXISTS (SELECT 1 FROM points p WHERE p.series_id = s.id) LIMIT 1",
            (experiment_id,),
        ).fetchone()
        if row is None:
            break
        series_id, left = row[0], at_most - deleted
        bound = conn.execute(
            "SELECT step FROM points WHERE series_id = ? ORDER BY step LIMIT 1 OFFSET ?",
            (series_id, left),
        ).fetchone()
        if bound is None:
            cur = conn.execute("DELETE FROM points WHERE series_id = ?", (series_id,))
        else:
            cur = conn.execute(
                "DELETE FROM points WHERE series_id = ? AND step < ?", (series_id, bound[0])
            )
        deleted += cast(int, cur.rowcount)
    return deleted

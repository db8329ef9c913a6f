"""Operating on a whole database: bring it to the current schema, back it up, copy it
to another engine."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from backend.db import pg_schema
from backend.db.connection import (
    Conn,
    Reader,
    Target,
    connect_sync,
    create_private,
    is_postgres,
)
from backend.db.events import REPLACED, StoredEvent, insert_numbered_events, last_event_id
from backend.db.migrations import migrate
from backend.db.writer import WriterCache, begin, commit


def schema_version(conn: Conn) -> int:
    """The newest migration applied (0 for a database livestudio never opened)."""
    exists = conn.execute(
        "SELECT to_regclass('schema_migrations')"
        if is_postgres(conn)
        else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if exists is not None and exists[0] is None:
        exists = None
    if exists is None:
        return 0
    return int(
        conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    )


async def instance_id(db: Reader) -> str:
    """This database's random name (see migration 13)."""
    async with db.execute("SELECT id FROM instance") as cur:
        row = await cur.fetchone()
    return str(row[0])


def migrate_file(target: Target) -> tuple[int, int]:
    """Apply every pending migration; returns (version before, version after)."""
    with closing(connect_sync(target)) as conn:
        before = schema_version(conn)
        return before, migrate(conn)


def backup_file(source: Path, dest: Path) -> tuple[int, int]:
    """A consistent copy of ``source`` at ``dest``, safe while a server writes to it.

    SQLite's online backup copies one committed state (nothing half-written). It copies
    every page in one step, inside one read transaction, which in WAL mode never blocks
    the server's writes: copied a part at a time it started over whenever the server
    committed, and under steady posting never finished (a 500 MB database: over 100 s
    unfinished; in one step 1.4 s). Returns (bytes, schema version).
    """
    create_private(dest)
    with closing(connect_sync(source)) as src, closing(sqlite3.connect(dest)) as out:
        src.backup(out)
        version = schema_version(out)
    return dest.stat().st_size, version


COPIED_TABLES = tuple(t for t in pg_schema.TABLES if t != "failed_approvals")
"""What ``copy`` moves: everything but the last minutes' failed approvals (a throttle)."""


class NotEmpty(Exception):
    """The destination of a copy already holds users or experiments."""


def copy(
    source: Target, dest: Target, progress: Callable[[str, int], None], replace: bool = False
) -> dict[str, int]:
    """Copy every table of ``source`` into ``dest`` (both migrated first); rows per table.

    The destination becomes an exact copy: ids are kept (tokens, stream ids and links
    stay valid), and PostgreSQL's id sequences move past them. A destination that already
    holds users or experiments is refused (``NotEmpty``) unless ``replace``, which empties
    it first, in the same transaction: running the copy again makes the copy exact again
    (rows deleted in the source, such as revoked tokens, are gone from it too). The
    destination is written in one transaction under the writer's lock, so a server
    running on it never sees half a copy; the source is read in one snapshot.
    """
    counts: dict[str, int] = {}
    with closing(connect_sync(source)) as src, closing(connect_sync(dest)) as dst:
        migrate(src)
        migrate(dst)
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if is_postgres(src) else "BEGIN")
        cache = WriterCache()
        begin(dst, cache)
        try:
            if not replace and _holds_data(dst):
                raise NotEmpty()
            # Ids given out in the destination before are never given out again (a TUI
            # still listing an old token would revoke a new one that took its id; streams
            # would take new events for ones they had seen).
            given = dict(dst.execute("SELECT name, id FROM id_high_water").fetchall())
            newest_before = last_event_id(dst)
            _empty(dst)
            for table in COPIED_TABLES:
                counts[table] = _copy_table(src, dst, table)
                progress(table, counts[table])
            for name, high in given.items():
                dst.execute(
                    "UPDATE id_high_water SET id = ? WHERE name = ? AND id < ?", (high, name, high)
                )
            # Last, past every event id either database gave out: streams open on the
            # destination reach it and end; their clients come back and reload.
            marker = max(newest_before, last_event_id(dst)) + 1
            insert_numbered_events(
                dst, [StoredEvent(id=marker, kind=REPLACED, data=b"{}")], time.time()
            )
            if is_postgres(dst):
                for table in COPIED_TABLES:
                    if "id" in _columns(dst, table) and table != "id_high_water":
                        # TRUNCATE left each sequence where it was: it only moves forward.
                        sequence = f"pg_get_serial_sequence('{table}', 'id')"
                        dst.execute(
                            f"SELECT setval({sequence}, GREATEST((SELECT MAX(id) FROM {table}),"
                            f" pg_sequence_last_value({sequence}::regclass), 1))"
                        )
            commit(dst, cache)  # counted: servers on the destination forget their caches
        except BaseException:
            if dst.in_transaction:
                dst.execute("ROLLBACK")
            raise
        finally:
            if src.in_transaction:
                src.execute("ROLLBACK")
    return counts


def _holds_data(conn: Conn) -> bool:
    return any(
        conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
        for table in ("users", "experiments")
    ) or (
        conn.execute("SELECT 1 FROM events WHERE kind <> ? LIMIT 1", (REPLACED,)).fetchone()
        is not None
    )


def _empty(conn: Conn) -> None:
    if is_postgres(conn):
        conn.execute(f"TRUNCATE {', '.join(pg_schema.TABLES)}")
        return
    for table in reversed(pg_schema.TABLES):  # children first
        conn.execute(f"DELETE FROM {table}")


def _columns(conn: Conn, table: str) -> dict[str, str]:
    """A table's columns and their declared types, in order."""
    if is_postgres(conn):
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}
    return {r["name"]: r["type"] for r in conn.execute(f"PRAGMA table_info({table})")}


def _primary_key(conn: Conn, table: str) -> list[str]:
    if is_postgres(conn):
        rows = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(?) AND i.indisprimary",
            (table,),
        ).fetchall()
        return [r[0] for r in rows]
    rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
    return [r["name"] for r in sorted(rows, key=lambda r: r["pk"]) if r["pk"]]


def _copy_table(src: Conn, dst: Conn, table: str) -> int:
    dst_types = _columns(dst, table)
    # points_log's own order column (PostgreSQL's) is made anew; rows are read in order.
    columns = [c for c in _columns(src, table) if c in dst_types and c != "seq"]
    binary = {i for i, c in enumerate(columns) if dst_types[c] in ("bytea", "BLOB")}
    key = _primary_key(dst, table)
    names = ", ".join(columns)
    if key:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        conflict = f" ON CONFLICT ({', '.join(key)}) DO " + (
            f"UPDATE SET {updates}" if updates else "NOTHING"
        )
    else:  # the points log: a row copied twice is filed once (the same value wins)
        conflict = ""
    order = ""
    if table == "points_log":
        order = " ORDER BY " + ("seq" if is_postgres(src) else "rowid")
    per_statement = max(1, 4000 // len(columns))
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    rows: list[Any] = []
    size = copied = 0

    def flush() -> None:
        dst.execute(
            f"INSERT INTO {table} ({names}) VALUES {', '.join([marks] * len(rows))}{conflict}",
            [_binary(v) if i in binary else v for row in rows for i, v in enumerate(row)],
        )

    for row in _read(src, f"SELECT {names} FROM {table}{order}"):
        rows.append(row)
        size += sum(len(v) for v in row if isinstance(v, bytes | str))
        # Statements stay small: a few thousand values, or a few MB of images.
        if len(rows) >= per_statement or size >= STATEMENT_BYTES:
            flush()
            copied += len(rows)
            rows, size = [], 0
    if rows:
        flush()
        copied += len(rows)
    return copied


STATEMENT_BYTES = 8 << 20


def _read(conn: Conn, sql: str) -> Iterator[Any]:
    """Every row of a query, without holding a large table in memory."""
    if is_postgres(conn):
        yield from conn.stream(sql)  # type: ignore[attr-defined]
    else:
        yield from conn.execute(sql)  # sqlite3 cursors fetch as they are iterated


def _binary(value: Any) -> Any:
    """JSON that SQLite kept as text (column defaults) for PostgreSQL's BYTEA."""
    return value.encode() if isinstance(value, str) else value

"""Operating on a whole database: bring it to the current schema, back it up, copy it
to another engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from backend.db import pg_schema
from backend.db.connection import Conn, Reader, Target, connect_sync, is_postgres
from backend.db.migrations import migrate
from backend.db.writer import WriterCache, begin


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

    SQLite's online backup copies the database page by page and starts over if a writer
    changes it meanwhile, so the copy is one committed state (nothing half-written), and
    the running server is never blocked for long. Returns (bytes, schema version).
    """
    with closing(connect_sync(source)) as src, closing(sqlite3.connect(dest)) as out:
        src.backup(out, pages=1024)
        version = schema_version(out)
    return dest.stat().st_size, version


COPIED_TABLES = tuple(t for t in pg_schema.TABLES if t != "failed_approvals")
"""What ``copy`` moves: everything but the last minutes' failed approvals (a throttle)."""


def copy(source: Target, dest: Target, progress: Callable[[str, int], None]) -> dict[str, int]:
    """Copy every table of ``source`` into ``dest`` (both migrated first); rows per table.

    Safe to run again: rows are matched on their primary key and brought up to date, so
    a second run copies what changed since and duplicates nothing. Ids are kept (tokens,
    stream ids and links stay valid), and PostgreSQL's id sequences move past them. The
    destination is written in one transaction under the writer's lock, so a server
    running on it never sees half a copy.
    """
    counts: dict[str, int] = {}
    with closing(connect_sync(source)) as src, closing(connect_sync(dest)) as dst:
        migrate(src)
        migrate(dst)
        # One snapshot of the source, however long the copy takes.
        src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if is_postgres(src) else "BEGIN")
        begin(dst, WriterCache())
        try:
            for table in COPIED_TABLES:
                counts[table] = _copy_table(src, dst, table)
                progress(table, counts[table])
            if is_postgres(dst):
                for table in COPIED_TABLES:
                    if "id" in _columns(dst, table) and table != "id_high_water":
                        dst.execute(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                            f" GREATEST((SELECT MAX(id) FROM {table}), 1))"
                        )
            dst.execute("COMMIT")
        except BaseException:
            if dst.in_transaction:
                dst.execute("ROLLBACK")
            raise
        finally:
            if src.in_transaction:
                src.execute("ROLLBACK")
    return counts


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
    cursor = src.execute(f"SELECT {names} FROM {table}{order}")
    copied = 0
    while True:
        rows = _take(cursor, per_statement)
        if not rows:
            return copied
        values: list[Any] = []
        for row in rows:
            values.extend(_binary(v) if i in binary else v for i, v in enumerate(row))
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        dst.execute(
            f"INSERT INTO {table} ({names}) VALUES {', '.join([marks] * len(rows))}{conflict}",
            values,
        )
        copied += len(rows)


def _take(cursor: Any, n: int) -> list[Any]:
    fetchmany = getattr(cursor, "fetchmany", None)
    if fetchmany is not None:
        return list(fetchmany(n))
    return [row for row in (cursor.fetchone() for _ in range(n)) if row is not None]


def _binary(value: Any) -> Any:
    """JSON that SQLite kept as text (column defaults) for PostgreSQL's BYTEA."""
    return value.encode() if isinstance(value, str) else value

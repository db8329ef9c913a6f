"""Operating on a whole database: bring it to the current schema, copy it while it runs."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from backend.db.connection import connect_sync
from backend.db.migrations import migrate


def schema_version(conn: sqlite3.Connection) -> int:
    """The newest migration applied (0 for a database livestudio never opened)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if exists is None:
        return 0
    return int(
        conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    )


def migrate_file(path: Path) -> tuple[int, int]:
    """Apply every pending migration; returns (version before, version after)."""
    with closing(connect_sync(path)) as conn:
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

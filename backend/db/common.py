"""What every storage module shares: how times are stored and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.db.connection import Conn

NOW = "((julianday('now') - 2440587.5) * 86400.0)"
"""SQL for the current UNIX time with sub-second precision (``unixepoch('subsec')`` needs
SQLite 3.42)."""


def ts(value: float | None) -> datetime | None:
    """A stored UNIX time as an aware datetime."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def next_id(conn: Conn, table: str) -> int:
    """A new id for ``table`` that was never given out before: SQLite reuses a rowid once
    the newest row is deleted, and a client holding the old id (a stream, a stale list in
    another TUI) would then act on the wrong row — revoke another token, say."""
    return int(
        conn.execute(
            "INSERT INTO id_high_water (name, id) VALUES (?, 1) ON CONFLICT (name)"
            " DO UPDATE SET id = id_high_water.id + 1 RETURNING id",
            (table,),
        ).fetchone()[0]
    )

"""The one place that opens SQLite connections, with every PRAGMA they need."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

# WAL lets readers run beside the single writer. synchronous=NORMAL in WAL mode keeps
# every commit across a crash or kill -9 of the process (only a power cut can lose the
# last transactions), at a fraction of the cost of FULL.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
)


def _prepare(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


def connect_sync(path: Path) -> sqlite3.Connection:
    """Open a connection for the writer thread or the CLI; transactions are explicit."""
    _prepare(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row  # storage code reads columns by name
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    return conn


async def connect_async(path: Path) -> aiosqlite.Connection:
    """Open a read connection for request handlers."""
    _prepare(path)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in _PRAGMAS:
        await conn.execute(pragma)
    await conn.execute("PRAGMA query_only=ON")
    return conn


async def ping(db: aiosqlite.Connection) -> None:
    """Raise if the database does not answer a trivial query."""
    async with db.execute("SELECT 1") as cur:
        await cur.fetchone()

"""PostgreSQL behind the same small connection interface the storage modules use on SQLite.

The storage modules are written once, in SQL both engines accept (upserts with
``ON CONFLICT``, ``RETURNING``, explicit ``BEGIN``/``COMMIT``), against the interface of
Python's ``sqlite3`` (writes) and ``aiosqlite`` (reads). This module gives PostgreSQL
that interface: ``?`` placeholders, rows readable by position and by column name, NaN
bound as NULL (what SQLite does, so stored NaNs read back the same on both engines), and
the handful of spellings that differ rewritten once per statement (``translate``).

Writes run on a synchronous psycopg connection in the writer's own thread; reads go
through an asyncio connection pool.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool

from backend.db.common import NOW
from backend.db.connection import POSTGRES

DIALECT = POSTGRES

_PG_NOW = "(extract(epoch FROM clock_timestamp())::double precision)"
_LITERAL = re.compile(r"('(?:[^']|'')*')")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_IS_NOT = re.compile(r"\bIS NOT (?!NULL\b|DISTINCT\b)", re.I)
_IS = re.compile(r"\bIS (?!NOT\b|NULL\b|DISTINCT\b)", re.I)


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's spelling of a statement as PostgreSQL's."""
    sql = sql.replace(NOW, _PG_NOW).replace("%", "%%")
    # Placeholders and keywords outside string literals only ('?' can be a value).
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):
        part = parts[i].replace("?", "%s")
        part = _NAMED.sub(r"%(\1)s", part)
        part = part.replace("BEGIN IMMEDIATE", "BEGIN").replace("group_concat(", "string_agg(")
        part = _IS_NOT.sub("IS DISTINCT FROM ", part)
        parts[i] = _IS.sub("IS NOT DISTINCT FROM ", part)
    return "".join(parts)


Params = Sequence[Any] | Mapping[str, Any] | None


def _bind(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool):  # flags are INTEGER columns, as on SQLite
        return int(value)
    return value


def _args(params: Params) -> Any:
    if isinstance(params, Mapping):
        return {k: _bind(v) for k, v in params.items()}
    return [_bind(v) for v in params] if params else []


class Row(tuple[Any, ...]):
    """A result row: by position, by column name, or unpacked, like ``sqlite3.Row``."""

    __slots__ = ()
    _names: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_names": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> RowMaker[Row]:
    description = cursor.description
    if description is None:
        return tuple  # type: ignore[return-value]
    cls = _row_class(tuple(c.name for c in description))
    return cls


class Cursor:
    """The fetched result of one statement."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid: int | None = None  # statements that need an id use RETURNING

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
"""A database server that vanished (network cut, machine gone) is noticed in ~25 s when
idle, and in 15 s with a statement sent and unacknowledged (keepalives wait while data is
in flight: a black-holed connection was held for the kernel's ~15 minutes of retries)."""
STATEMENT_TIMEOUT = 30.0
"""No statement runs longer (a stuck one would hold the cluster's write lock)."""
IDLE_IN_TRANSACTION = 60.0
"""A session stalled mid-transaction (a paused process) is ended, freeing its locks."""


def _session_settings(lock_timeout: float) -> list[str]:
    return [
        f"SET lock_timeout = {int(lock_timeout * 1000)}",
        f"SET statement_timeout = {int(STATEMENT_TIMEOUT * 1000)}",
        f"SET idle_in_transaction_session_timeout = {int(IDLE_IN_TRANSACTION * 1000)}",
    ]


class Connection:
    """A synchronous connection for the writer thread and the command line.

    ``lock_timeout``: how long a write waits for the cluster's write lock (held by another
    process's transaction) before failing, which the writer answers with a 503.
    """

    dialect = DIALECT

    def __init__(self, url: str, lock_timeout: float = 10.0) -> None:
        self.url = url
        self._conn = psycopg.connect(
            url,
            autocommit=True,  # transactions are explicit, as on SQLite (isolation_level=None)
            cursor_factory=psycopg.Cursor,
            row_factory=_row_factory,
            connect_timeout=5,
            **KEEPALIVES,
        )
        for statement in _session_settings(lock_timeout):
            self._conn.execute(statement)

    def cancel(self) -> None:
        """Ask the server to stop the statement running now (from any thread)."""
        self._conn.cancel_safe(timeout=2)

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status not in (
            pq.TransactionStatus.IDLE,
            pq.TransactionStatus.UNKNOWN,
        )

    @property
    def broken(self) -> bool:
        """Whether the connection was lost (a new one is needed)."""
        return self._conn.broken or self._conn.closed

    def execute(self, sql: str, params: Params = None) -> Cursor:
        cur = self._conn.execute(translate(sql), _args(params))
        rows = cur.fetchall() if cur.description is not None else []
        return Cursor(rows, cur.rowcount)

    def script(self, sql: str) -> list[list[Any]]:
        """Run several statements in one round trip (no parameters, no translation);
        returns the rows of each statement's result."""
        cur = psycopg.ClientCursor(self._conn)  # the simple protocol takes several
        cur.execute(sql)
        results = []
        while True:
            results.append(cur.fetchall() if cur.description is not None else [])
            if not cur.nextset():
                return results

    def stream(self, sql: str, size: int = 1000) -> Iterator[Any]:
        """Rows of a query read in pages by a server-side cursor (inside a transaction),
        so a table larger than memory can be read."""
        with self._conn.cursor(name="livestudio_stream") as cur:
            cur.execute(translate(sql))
            while rows := cur.fetchmany(size):
                yield from rows

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Cursor:
        with self._conn.cursor() as cur:
            cur.executemany(translate(sql), [_args(p) for p in params])
            return Cursor([], cur.rowcount)

    def close(self) -> None:
        self._conn.close()


class _Result:
    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._cursor = Cursor(rows, rowcount)
        self.rowcount = rowcount

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __aiter__(self) -> _Result:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _Pending:
    """``db.execute(...)``: awaited, or used as ``async with``, like aiosqlite's."""

    def __init__(self, pool: AsyncConnectionPool, sql: str, params: Params) -> None:
        self._pool, self._sql, self._params = pool, sql, params

    async def _run(self) -> _Result:
        async with self._pool.connection() as conn:
            cur = await conn.execute(translate(self._sql), _args(self._params))
            rows = await cur.fetchall() if cur.description is not None else []
            return _Result(rows, cur.rowcount)

    def __await__(self) -> Any:
        return self._run().__await__()

    async def __aenter__(self) -> _Result:
        return await self._run()

    async def __aexit__(self, *_: object) -> None:
        return None


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    for statement in _session_settings(STATEMENT_TIMEOUT):
        await conn.execute(statement)


class Reader:
    """Read connections for request handlers: a pool, used one statement at a time."""

    dialect = DIALECT

    def __init__(self, url: str, size: int = 8) -> None:
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs={
                "autocommit": True,
                "cursor_factory": psycopg.AsyncCursor,
                "row_factory": _row_factory,
                "connect_timeout": 5,
                **KEEPALIVES,
            },
            configure=_configure,
            open=False,
            timeout=5,
            # A connection the database dropped (a restart) is noticed before it is lent.
            check=AsyncConnectionPool.check_connection,
        )

    async def open(self) -> None:
        await self._pool.open(wait=True, timeout=10)

    def execute(self, sql: str, params: Params = None) -> _Pending:
        return _Pending(self._pool, sql, params)

    async def close(self) -> None:
        await self._pool.close()


BUSY = "The database is busy; try again in a moment."

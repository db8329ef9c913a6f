"""The one place that opens database connections: SQLite with every PRAGMA it needs, or
PostgreSQL through ``backend.db.postgres``, which speaks the same interface."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

POSTGRES = "postgresql"
PG_WRITE_LOCK = 0x6C697665
"""Key of the cluster-wide advisory lock every PostgreSQL write transaction takes."""

Target = Path | str
"""Where the database is: a SQLite file, or a ``postgresql://`` URL."""


class Cursor(Protocol):
    """What a statement gives back (``sqlite3.Cursor`` or ``postgres.Cursor``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A write connection of either engine; storage functions take this."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def close(self) -> None: ...


class Reader(Protocol):
    """The read side request handlers use: aiosqlite's connection or PostgreSQL's pool.

    ``async with db.execute(sql, params) as cur``, then ``await cur.fetchone()`` or
    ``await cur.fetchall()``; rows by position or by column name.
    """

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    async def close(self) -> None: ...


Row = Any
"""A result row of either engine: by position or by column name."""


def is_postgres(conn: object) -> bool:
    """Whether a connection (or reader) is PostgreSQL's."""
    return getattr(conn, "dialect", "sqlite") == POSTGRES


def describe(target: Target) -> str:
    """The database for a message: the file, or the URL without its password."""
    if not isinstance(target, str):
        return str(target)
    url = re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", target)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def scrub(text: str, target: Target) -> str:
    """``text`` (an error message) without the password of the URL ``target``."""
    if not isinstance(target, str):
        return text
    secrets = re.findall(r"//[^:/@]*:([^@/]+)@", target)
    secrets += re.findall(r"(?i)password=([^&\s]+)", target)
    for secret in secrets:
        for form in {secret, urllib.parse.unquote(secret)}:
            if form:
                text = text.replace(form, "***")
    return text


def duplicate_errors() -> tuple[type[Exception], ...]:
    """What inserting a row that breaks a UNIQUE constraint raises, on either engine."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, psycopg.errors.UniqueViolation)


class SchemaTooNew(Exception):
    """The database was migrated by a newer livestudio: this one would write into tables it
    does not know (a rollback after an upgrade), so nothing opens it."""


def database_errors(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """The exception types a database failure raises, for ``except`` clauses.

    psycopg is imported only when PostgreSQL is used (it costs every command's start
    time): if it was never imported, nothing can have raised its errors.
    """
    psycopg = sys.modules.get("psycopg")
    found = (sqlite3.Error, psycopg.Error) if psycopg is not None else (sqlite3.Error,)
    return (*found, SchemaTooNew, *more)


def our_mistake(exc: BaseException) -> bool:
    """Whether a database error is a bug of ours (a wrong statement or binding, a closed
    connection) rather than the database away or damaged: such errors must not pass for an
    outage, quietly, in one log line."""
    return any(c.__name__ in ("ProgrammingError", "InterfaceError") for c in type(exc).__mro__)


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
    create_private(path)


def create_private(path: Path) -> None:
    """Create the database file readable by its owner only, if it does not exist yet.

    It holds password hashes and every user's runs; SQLite gives its -wal and -shm files
    the same permissions. (Created by SQLite itself, it was 0644 under the usual umask.)
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        # Never open it here: closing any descriptor of a file drops every POSIX lock this
        # process holds on it, SQLite's included (the writer's, under a new reader).
        return
    target = path.resolve() if path.is_symlink() else path  # a dangling link: its target
    with contextlib.suppress(FileExistsError):  # made meanwhile: nothing was opened
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def connect_sync(target: Target) -> Any:
    """Open a connection for the writer or the CLI; transactions are explicit."""
    if isinstance(target, str):
        from backend.db import postgres

        return postgres.Connection(target)
    return _connect_sqlite(target)


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    _prepare(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row  # storage code reads columns by name
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    return conn


async def connect_async(target: Target) -> Any:
    """Open the read side for request handlers."""
    if isinstance(target, str):
        from backend.db import postgres

        reader = postgres.Reader(target)
        await reader.open()
        return reader
    path = target
    _prepare(path)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for pragma in _PRAGMAS:
        await conn.execute(pragma)
    await conn.execute("PRAGMA query_only=ON")
    return conn


async def ping(db: Reader) -> None:
    """Raise if the database does not answer a trivial query."""
    async with db.execute("SELECT 1") as cur:
        await cur.fetchone()

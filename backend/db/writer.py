"""The single writer: every write runs here, in batches that commit together.

Request handlers submit small synchronous jobs; a dedicated thread runs whatever is
queued in one ``BEGIN IMMEDIATE`` transaction (one savepoint per job, so one bad job
never takes the others down), commits once, and only then answers each job and
publishes the stream events the batch produced. A caller is answered only after its own
data is committed, yet a burst of N posts costs one fsync-free commit instead of N.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from backend.db import repository
from backend.db.connection import connect_sync
from backend.db.migrations import migrate

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 512


@dataclass
class WriteContext:
    """What a write job gets: the connection and a way to append stream events."""

    conn: sqlite3.Connection
    events: list[repository.StoredEvent] = field(default_factory=list)

    def emit(self, event: repository.NewEvent) -> None:
        """Record a stream event in the same transaction; published after commit."""
        self.events.append(repository.insert_event(self.conn, event))


Job = Callable[[WriteContext], Any]


def run_in_transaction(conn: sqlite3.Connection, jobs: list[Job]) -> tuple[list[Any], list[Any]]:
    """Run jobs in one transaction; returns (outcomes, committed events).

    Each outcome is the job's return value or the exception it raised.
    """
    ctx = WriteContext(conn)
    outcomes: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            mark = len(ctx.events)
            conn.execute("SAVEPOINT job")
            try:
                outcomes.append(job(ctx))
                conn.execute("RELEASE job")
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                del ctx.events[mark:]
                outcomes.append(exc)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes, ctx.events


class Writer:
    """Owns the write connection and its thread; see the module docstring."""

    def __init__(self, path: Path, publish: Callable[[list[repository.StoredEvent]], None]) -> None:
        self._path = path
        self._publish = publish
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="livestudio-writer")
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]]] = asyncio.Queue()
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the database, apply migrations and start taking jobs."""
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, self._open)
        self._task = asyncio.create_task(self._run(), name="livestudio-writer")

    def _open(self) -> sqlite3.Connection:
        conn = connect_sync(self._path)
        migrate(conn)
        return conn

    async def stop(self) -> None:
        """Finish: fail queued jobs, close the connection and the thread."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        if self._conn is not None:
            conn = self._conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def submit(self, job: Callable[[WriteContext], T]) -> T:
        """Run ``job`` in the next batch; returns once its transaction has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            jobs = [job for job, _ in batch]
            try:
                outcomes, events = await loop.run_in_executor(
                    self._executor, run_in_transaction, self._conn, jobs
                )
            except Exception as exc:  # the commit itself failed: nobody's data is in
                log.exception("write batch failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if events:
                self._publish(events)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away (client disconnected)
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

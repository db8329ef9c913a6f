"""The writer on PostgreSQL: the same jobs and group commit, run in a thread of its own.

On SQLite a batch runs on the event loop because it costs microseconds; on PostgreSQL
every statement is a network round trip and a commit waits for the server's fsync, so a
batch runs in the writer's one thread while the event loop keeps receiving posts, which
queue up and form the next batch (group commit: while one commit is in flight, the next
batch gathers by itself). A 200 still means committed: a job's caller is answered only
after its batch's COMMIT returned.

A lost connection (PostgreSQL restarted, a failover) fails the batch in flight with a
503, which DVCLive re-sends, and the next batch opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from backend import metrics
from backend.db import postgres, repository
from backend.db.migrations import migrate
from backend.db.writer import (
    DATABASE_DOWN,
    LOCKED,
    STOPPING,
    Job,
    Post,
    WriteContext,
    Writer,
    run_in_transaction,
    storage_error,
)
from backend.services.errors import Unavailable

T = TypeVar("T")
STOP_WAIT = 3.0
"""Seconds ``stop`` waits for the batch in flight before cancelling it."""
ANSWER_GRACE = 1.5
"""Seconds past ``write_timeout`` a caller waits for its batch before a 503 (4.5 s in all
by default, under DVCLive's 5 s read timeout): a database that hangs without closing the
connection (a paused server, a network black hole) held every post unanswered."""
log = logging.getLogger(__name__)


class PostgresWriter(Writer):
    """``Writer`` for a ``postgresql://`` database (see the module docstring)."""

    def __init__(
        self,
        url: str,
        publish: Callable[[list[repository.StoredEvent]], None],
        *,
        write_timeout: float = 3.0,
    ) -> None:
        # No disk reserve: the database's disk is the database server's to watch.
        super().__init__(Path(os.devnull), publish, write_timeout=write_timeout, disk_reserve=0)
        self._url = url
        self._pg: postgres.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="livestudio-pg-writer")
        self._lock_held_elsewhere = False
        """The last batch timed out waiting for the cluster's write lock (another program)."""
        self._begun: set[asyncio.Future[Any]] = set()
        """The callers of the batch sent to the database last (``submit``)."""

    async def start(self) -> None:
        """Connect, apply migrations and start taking jobs."""
        loop = asyncio.get_running_loop()
        self._pg = await loop.run_in_executor(self._thread, self._connect)
        self._tasks = [asyncio.create_task(self._run(), name="livestudio-writer")]

    def _connect(self) -> postgres.Connection:
        conn = postgres.Connection(self._url, lock_timeout=self._write_timeout)
        migrate(conn)
        return conn

    async def stop(self) -> None:
        """Fail queued jobs and close the connection (after the batch in flight)."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_queued()
        loop = asyncio.get_running_loop()
        # Queued behind any batch still running in the thread, so it never closes under it;
        # a batch stuck on the database is cancelled rather than waited for.
        closing = loop.run_in_executor(self._thread, self._close)
        try:
            await asyncio.wait_for(asyncio.shield(closing), STOP_WAIT)
        except TimeoutError:
            if self._pg is not None:
                with contextlib.suppress(Exception):
                    self._pg.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing, STOP_WAIT)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    async def submit(self, job: Callable[[WriteContext], T], post: Post | None = None) -> T:
        """Run ``job`` in the next batch; returns once its transaction has committed."""
        if self._stopped:  # see ``Writer.submit``
            raise Unavailable(STOPPING, retry_after=1)
        if post is not None and not post.submitted:
            post.submitted = True
            self._unsubmitted -= 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put_nowait((job, future, loop.time() + self._write_timeout))
        self._maybe_enough()
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), self._write_timeout + ANSWER_GRACE
            )
        except TimeoutError:
            if post is None and future in self._begun:
                # Its batch was sent: it may still commit. A post sent again changes
                # nothing twice, but a token, a device login or an account made after a
                # 503 would be one its caller never heard of: wait for its outcome.
                return await future
            future.cancel()  # not run: its batch had not begun
            raise Unavailable(DATABASE_DOWN, retry_after=1) from None

    def _failed(self, exc: Exception) -> Exception:
        return storage_error(exc) or exc

    def _commit(self, jobs: list[Job]) -> tuple[list[Any], list[repository.StoredEvent]]:
        if self._pg is None or self._pg.broken:
            if self._pg is not None:
                self._pg.close()
            self._pg = None
            self._pg = postgres.Connection(self._url, lock_timeout=self._write_timeout)
        return run_in_transaction(self._pg, jobs, self._cache)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            now = loop.time()
            # A job that timed out in the queue says why: behind another program's lock
            # (the batch before it waited for it in vain), or just a busy database.
            reason = LOCKED if self._lock_held_elsewhere else postgres.BUSY
            for _, future, deadline in batch:
                if deadline <= now and not future.done():
                    future.set_exception(Unavailable(reason, retry_after=1))
            batch = [item for item in batch if not item[1].done()]
            if not batch:
                continue
            started = time.perf_counter()
            self._begun = {future for _, future, _ in batch}
            try:
                outcomes, events = await loop.run_in_executor(
                    self._thread, self._commit, [job for job, _, _ in batch]
                )
            except Exception as exc:
                error = storage_error(exc)
                self._lock_held_elsewhere = (
                    isinstance(error, Unavailable) and error.detail == LOCKED
                )
                self._batch_failed(batch, exc)
                continue
            self._lock_held_elsewhere = False
            metrics.COMMIT_JOBS.observe(len(batch))
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            self._batch_committed(batch, outcomes, events)

"""The single writer: every write runs here, in batches that commit together.

Request handlers submit small synchronous jobs; the writer runs whatever is queued in one
``BEGIN IMMEDIATE`` transaction (if a job fails, the batch is rerun with each job in a
savepoint, so one bad job never takes the others down), commits once, and only then
answers each job and publishes the stream events the batch produced. A caller is answered
only after its own data is committed, yet a burst of N posts costs one commit instead of
N. When only one run is posting there is nothing to batch: its job runs at once, in its
own request (see ``Writer``).

The batch runs on the event loop itself. Measured on one core, handing each batch to a
thread (as aiosqlite does) cost more in thread hand-offs and GIL contention than the
SQLite work itself, which in WAL mode without per-commit fsync takes microseconds per
job. The one slow thing SQLite does on commit, the WAL checkpoint, is turned off on this
connection and run by a background thread on a connection of its own instead.

Nothing here ever waits on the event loop for another process: the write connection has
no busy timeout, so when another program holds SQLite's write lock (the CLI, a backup,
``sqlite3`` in a shell) taking it fails at once, and the writer retries with a growing
sleep, letting every other request through meanwhile. A job that cannot start within
``write_timeout`` is answered 503 with ``Retry-After`` (DVCLive re-sends). A full disk
is a 507 (see ``backend.db.disk``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from backend import metrics
from backend.db import repository
from backend.db.connection import PG_WRITE_LOCK, Conn, connect_sync, is_postgres
from backend.db.disk import DiskGuard
from backend.db.migrations import migrate
from backend.db.write_context import WriteContext, WriterCache
from backend.services.errors import DISK_FULL, DiskFull, DomainError, InvalidInput, Unavailable

if TYPE_CHECKING:  # psycopg is imported only when PostgreSQL is used
    from backend.db.postgres import Connection as PgConnection

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 512
CHECKPOINT_EVERY = 0.5
WAL_SIZE_LIMIT = 64 << 20
REWIND_AT_FRAMES = 4096
"""WAL frames (pages) past which the writer pauses for a checkpoint to complete (so the WAL
rewinds)."""
MAX_PAUSE = 0.1
"""The longest the writer pauses for it: a checkpoint slowed by the disk must not hold posts
(the writer then goes on, and the checkpoint completes another time)."""
HOLD_BEGUN = 0.01
"""How long a transaction begun ahead of time may wait for a job before it is let go."""
MAX_HOLD = 0.05
"""The longest the writer keeps the write lock across back-to-back begun transactions."""
BATCH_WINDOW = 0.001
"""The longest a batch waits for posts that were received but have not submitted yet."""
LOCK_RETRY_MAX = 0.05
LOCK_SAY_AFTER = 1.0
"""Logged once another program has held the write lock this long (seconds)."""
"""The longest sleep between two tries to take a write lock another program holds."""
LOCKED = (
    "The database is locked by another program (a backup or a `livestudio` command);"
    " try again in a moment."
)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13


DATABASE_DOWN = "The database is not answering; try again in a moment."
STOPPING = "The server is stopping; try again once it is back."


def storage_error(exc: BaseException) -> DomainError | None:
    """The domain error a storage failure means for the client, if it is one they can act on."""
    psycopg = sys.modules.get("psycopg")  # imported only when PostgreSQL is used
    if psycopg is not None and isinstance(exc, psycopg.Error):
        if isinstance(exc, psycopg.errors.DiskFull):
            return DiskFull(DISK_FULL)
        if isinstance(exc, psycopg.DataError):  # a value PostgreSQL cannot store
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid value"
            return InvalidInput(f"A value in the request cannot be stored ({reason}); fix it.")
        if isinstance(exc, psycopg.errors.LockNotAvailable):  # lock_timeout passed
            return Unavailable(LOCKED, retry_after=1)
        # Connection lost or refused, a pool with no connection to lend, a deadlock or
        # serialisation failure: nothing was committed, and a retry can succeed.
        if isinstance(exc, psycopg.OperationalError):
            return Unavailable(DATABASE_DOWN, retry_after=1)
        return None
    if not isinstance(exc, sqlite3.Error):
        return None
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == _SQLITE_FULL:
        return DiskFull(DISK_FULL)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return Unavailable(LOCKED, retry_after=1)
    return None


Job = Callable[[WriteContext], Any]
Queued = tuple[Job, "asyncio.Future[Any]", float]
"""A job waiting for the writer: the job, its caller's future, its deadline."""


def cache_safe(job: Callable[[WriteContext], T]) -> Callable[[WriteContext], T]:
    """Mark a job that keeps the writer cache true (the ingest job); others clear it."""
    job.cache_safe = True  # type: ignore[attr-defined]
    return job


def shares_deferred(job: Callable[[WriteContext], T]) -> Callable[[WriteContext], T]:
    """Mark a cache-safe job that reads no row another job may have left deferred (see
    ``WriteContext``): the ingest job, which reads experiments through the cache. Every
    other job runs on a database with everything before it written."""
    job.shares_deferred = True  # type: ignore[attr-defined]
    return cache_safe(job)


def heavy(job: Callable[[WriteContext], T]) -> Callable[[WriteContext], T]:
    """Mark a job that writes megabytes (a post's images): its batch's transaction runs in a
    thread. On the event loop, SQLite writing 22 MB of blobs held every other request for
    ~100 ms; in a thread it releases the GIL while it writes, so reads, streams and other
    requests go on (only other writes wait, as they must for SQLite's one writer)."""
    job.heavy = True  # type: ignore[attr-defined]
    return job


def run_in_transaction(
    conn: Conn, jobs: list[Job], cache: WriterCache | None = None
) -> tuple[list[Any], list[repository.StoredEvent]]:
    """Run jobs in one transaction; returns (outcomes, committed events).

    A transaction the caller already began with ``begin`` is used as it is.
    Each outcome is the job's return value or the exception it raised. Jobs almost never
    fail once their input has been validated, so the batch first runs without a savepoint
    per job; only if a job raises is it rolled back and run again with each job isolated
    (jobs are functions of the database and their input, so running one twice is safe).
    """
    cache = cache if cache is not None else WriterCache()
    try:
        return _attempt(conn, jobs, cache, isolate=False)
    except _JobFailed as failed:
        # A failure of the database itself (a full disk, say) would fail every job again,
        # and SQLite may already have rolled the whole transaction back.
        if len(jobs) == 1 or _failure_of_the_database(failed.error):
            return [failed.error] * len(jobs), []
        return _attempt(conn, jobs, cache, isolate=True)


def _failure_of_the_database(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


def begin(conn: Conn, cache: WriterCache) -> None:
    """``BEGIN IMMEDIATE``, and forget the cache if another connection committed since.

    The write lock is held from here on, so nobody else can commit until this
    transaction ends and the check stays true however late the jobs come.
    """
    if is_postgres(conn):
        # One write transaction at a time across every process of the cluster: event ids
        # are taken in commit order (a stream never sees a lower id after a higher one).
        # Every commit counts itself in instance.writes (see ``commit``), so the count
        # tells whether anyone else committed since this writer's last commit, as
        # data_version does on SQLite. One round trip for all three.
        try:
            *_, (row,) = cast("PgConnection", conn).script(
                f"BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK}); SELECT writes FROM instance"
            )
        except BaseException:
            # The lock timed out (or the connection failed) after BEGIN: leave no aborted
            # transaction behind for the next batch to run into.
            if conn.in_transaction:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
            raise
        if row[0] != cache.data_version:
            cache.clear()
        return
    conn.execute("BEGIN IMMEDIATE")
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    if version != cache.data_version:
        cache.clear()
        cache.data_version = version


def commit(conn: Conn, cache: WriterCache) -> None:
    """``COMMIT`` (on PostgreSQL counting the commit, in the same round trip)."""
    if is_postgres(conn):
        (row,), _ = cast("PgConnection", conn).script(
            "UPDATE instance SET writes = writes + 1 RETURNING writes; COMMIT"
        )
        cache.data_version = row[0]
        return
    conn.execute("COMMIT")


class _JobFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _attempt(
    conn: Conn, jobs: list[Job], cache: WriterCache, isolate: bool
) -> tuple[list[Any], list[repository.StoredEvent]]:
    ctx = WriteContext(conn, cache)
    outcomes: list[Any] = []
    if not conn.in_transaction:  # the writer may have begun it ahead of time
        begin(conn, cache)
    try:
        for job in jobs:
            # Only ingest jobs share deferred writes; any other job (the sweeper's, say,
            # which reads when runs last posted) sees the database as the jobs before it
            # left it, and leaves nothing deferred behind.
            safe = getattr(job, "cache_safe", False)
            sharing = getattr(job, "shares_deferred", False)
            if not sharing:
                _flush(ctx, isolate)
            mark = len(ctx.events)
            if isolate:
                conn.execute("SAVEPOINT job")
            try:
                outcomes.append(job(ctx))
                if isolate or not sharing:
                    ctx.flush()
            except Exception as exc:
                if not isolate:
                    raise _JobFailed(exc) from exc
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                ctx.discard()
                del ctx.events[mark:]
                cache.clear()
                outcomes.append(exc)
                continue
            if isolate:
                conn.execute("RELEASE job")
            if not safe:
                cache.clear()
        _flush(ctx, isolate)
        if len(cache.experiments) > WriterCache.MAX_EXPERIMENTS:
            cache.clear()
        commit(conn, cache)
    except BaseException:
        # Whatever the jobs had cached may describe rows that are now rolled back.
        cache.clear()
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes, ctx.events


def _flush(ctx: WriteContext, isolate: bool) -> None:
    """Write what jobs deferred; a failure reruns the batch with each job isolated."""
    try:
        ctx.flush()
    except Exception as exc:
        if isolate:  # each job flushed its own inside its savepoint: nothing is pending
            raise
        raise _JobFailed(exc) from exc


async def _finish_in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` in a thread; if cancelled meanwhile, wait for it before raising.

    Cancelling ``asyncio.to_thread`` returns at once while the thread keeps running: the
    caller would then close the connection the thread is still using, which crashes the
    interpreter (seen as a segfault when a writer stopped mid-checkpoint).
    """
    task = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Post:
    """One live post between being received and being answered (``Writer.post``)."""

    __slots__ = ("submitted", "writer")

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.submitted = False

    def __enter__(self) -> Post:
        self.writer._in_flight += 1
        self.writer._unsubmitted += 1
        return self

    def __exit__(self, *_: object) -> None:
        writer = self.writer
        writer._in_flight -= 1
        if not self.submitted:  # refused before it reached the writer
            writer._unsubmitted -= 1
            writer._maybe_enough()


class Writer:
    """Owns the write connection; see the module docstring.

    When to commit is decided from what is actually in flight: the posts received and not
    yet answered (``post``). A post that is the only one in flight is committed at once,
    inline in its own request, with no hand-off at all, and its next transaction is begun
    ahead of time (see ``_begin_ahead``). Otherwise its job is queued, and the writer's
    batch waits up to ``BATCH_WINDOW`` only for posts that were received and have not
    submitted yet (they are being read or decoded), so one commit serves them all and no
    post ever waits for a sibling that is not coming.
    """

    def __init__(
        self,
        path: Path,
        publish: Callable[[list[repository.StoredEvent]], None],
        *,
        write_timeout: float = 3.0,
        disk_reserve: int = 8 << 20,
    ) -> None:
        self._path = path
        self._publish = publish
        self._write_timeout = write_timeout
        self.disk = DiskGuard(path, disk_reserve)
        self._locked_since: float | None = None
        """Since when another program has held the write lock we want (monotonic)."""
        self._lock_said = False
        self._queue: asyncio.Queue[Queued] = asyncio.Queue()
        self._conn: Conn | None = None
        self._cache = WriterCache()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        """Posts received and not yet answered."""
        self._unsubmitted = 0
        """Of those, the ones whose job has not reached the writer yet."""
        self._collecting = False
        self._paused: asyncio.Future[None] | None = None
        """Set while a checkpoint finishes in the background: no transaction begins."""
        self._paused_until = 0.0
        self._enough: asyncio.Future[None] | None = None
        self._begun_at = 0.0
        self._held_since = float("inf")
        self._let_go: asyncio.TimerHandle | None = None
        self._stopped = False
        self._in_thread: asyncio.Future[Any] | None = None
        """A heavy batch's transaction running in a thread: nothing else touches the
        connection meanwhile (no inline post, no transaction begun ahead or let go)."""

    async def start(self) -> None:
        """Open the database, apply migrations and start taking jobs."""
        self._conn = await asyncio.to_thread(self._open)
        self._tasks = [
            asyncio.create_task(self._run(), name="livestudio-writer"),
            asyncio.create_task(self._checkpoints(), name="livestudio-checkpoint"),
        ]

    def _open(self) -> Conn:
        conn = connect_sync(self._path)
        migrate(conn)
        self.disk.start()
        # Never block the event loop on another process's lock: fail at once and retry
        # asynchronously (see the module docstring).
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        # Once rewound, the WAL file is cut back to this size rather than kept at its peak.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        return conn

    async def stop(self) -> None:
        """Finish: fail queued jobs, checkpoint and close the connection."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_queued()
        if self._let_go is not None:
            self._let_go.cancel()
        if self._conn is not None:
            self._let_go_of_begun()
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def post(self) -> Post:
        """``with writer.post() as post:`` around a live post, from received to answered."""
        return Post(self)

    async def submit(self, job: Callable[[WriteContext], T], post: Post | None = None) -> T:
        """Run ``job`` in the next batch; returns once its transaction has committed.

        ``post``: the job is a live post's (the first of it), which the batching policy
        counts; its job is refused up front while the disk is full.
        """
        if self._stopped:
            # Nothing would ever answer it: a session's clean-up that runs after the stop
            # (an SSH TUI cut off by it) waited on it for good, and the process with it.
            raise Unavailable(STOPPING, retry_after=1)
        if post is not None:
            if self.disk.refuse_posts():
                raise DiskFull(DISK_FULL)
            if not post.submitted:
                post.submitted = True
                self._unsubmitted -= 1
            if self._in_flight == 1:
                # Requests whose bytes arrived together are scheduled together: one turn of
                # the event loop lets them reach this point too, so a burst is one batch.
                await asyncio.sleep(0)
            if (
                self._in_flight == 1
                and self._conn is not None
                and not self._collecting
                and self._paused is None
                and self._in_thread is None
                and not getattr(job, "heavy", False)
                and self._queue.empty()
                and self._try_begin()
            ):
                return self._execute_inline(job)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put_nowait((job, future, loop.time() + self._write_timeout))
        self._maybe_enough()
        return await future

    def _maybe_enough(self) -> None:
        """Let a gathering batch go once every received post has submitted."""
        enough = self._enough
        if enough is not None and self._unsubmitted <= 0 and not enough.done():
            enough.set_result(None)

    def _try_begin(self) -> bool:
        """Hold a write transaction, begun now or ahead; False while another program writes."""
        conn = self._conn
        assert conn is not None
        if conn.in_transaction:
            return True
        try:
            begin(conn, self._cache)
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not isinstance(storage_error(exc), Unavailable):
                raise
            return False
        return True

    def _execute_inline(self, job: Callable[[WriteContext], T]) -> T:
        assert self._conn is not None
        started = time.perf_counter()
        try:
            outcomes, events = run_in_transaction(self._conn, [job], self._cache)
        except sqlite3.Error as exc:
            raise self._failed(exc) from None
        metrics.COMMIT_JOBS.observe(1)
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        self._committed(events)
        self._begin_ahead()
        outcome = outcomes[0]
        if isinstance(outcome, Exception):
            raise self._failed(outcome)
        return outcome

    def _committed(self, events: list[repository.StoredEvent]) -> None:
        if self._locked_since is not None:
            if self._lock_said:
                held = time.monotonic() - self._locked_since
                log.warning("the database write lock is free again (after %.1f s)", held)
            self._locked_since = None
            self._lock_said = False
        if events:
            try:
                self._publish(events)
            except Exception as exc:
                # The channels stop before the last writes of a shutdown (an SSH session
                # ending): raised here, it killed the writer, and whoever waited on it hung
                # the stop for good. The events are stored; streams replay them.
                stopping = isinstance(exc, RuntimeError)  # the plugin's "not initialized"
                log.log(
                    logging.INFO if stopping else logging.WARNING,
                    "committed events not published (%s): streams replay them",
                    exc,
                )

    def _failed(self, exc: Exception) -> Exception:
        """What a job's or a commit's failure means for its caller."""
        error = storage_error(exc)
        if isinstance(error, DiskFull):
            self.disk.disk_full()
        return error or exc

    def _begin_ahead(self) -> None:
        """Begin a lone run's next transaction once its post has been answered.

        Taking SQLite's locks is a good part of a lone post's time, so it is done in the
        gap before the next post arrives (batches share that cost and do not need it). A
        begun transaction holds the write lock, which another process (the CLI) may be
        waiting for: it is let go when unused for ``HOLD_BEGUN``, before the writer's own
        checkpoints, and the lock is left free after ``MAX_HOLD`` of back-to-back posts.
        """
        asyncio.get_running_loop().call_soon(self._begin_now)

    def _begin_now(self) -> None:
        conn = self._conn
        if (
            conn is None
            or self._in_thread is not None
            or conn.in_transaction
            or not self._queue.empty()
            or self._collecting
            or self._paused is not None
        ):
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._held_since >= MAX_HOLD:
            self._held_since = float("inf")  # leave a gap; the next post begins anew
            return
        try:
            begin(conn, self._cache)
        except sqlite3.Error:  # another process writes; the next job will wait for it
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return
        self._held_since = min(self._held_since, now)
        self._begun_at = now
        if self._let_go is None:
            self._let_go = loop.call_later(HOLD_BEGUN, self._let_go_if_unused)

    def _let_go_if_unused(self) -> None:
        self._let_go = None
        conn = self._conn
        if conn is None or not conn.in_transaction:
            return
        loop = asyncio.get_running_loop()
        waited = loop.time() - self._begun_at
        if waited >= HOLD_BEGUN:
            self._let_go_of_begun()
        else:
            self._let_go = loop.call_later(HOLD_BEGUN - waited, self._let_go_if_unused)

    def _let_go_of_begun(self) -> None:
        if self._in_thread is not None:  # that transaction is a batch's, and ends itself
            return
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._held_since = float("inf")

    async def _gather_siblings(self) -> None:
        """Wait up to ``BATCH_WINDOW`` for the posts received but not yet submitted."""
        # One turn of the event loop first: requests read in the same turn as the first
        # job start and are counted, and the sockets are polled once more. At 8 busy
        # connections this took batches from ~3 posts to ~7 and posts/s up by a fifth.
        await asyncio.sleep(0)
        if self._unsubmitted <= 0:
            return
        loop = asyncio.get_running_loop()
        enough = self._enough = loop.create_future()
        timer = loop.call_later(BATCH_WINDOW, _set_once, enough)
        try:
            await enough
        finally:
            timer.cancel()
            self._enough = None

    def _fail_queued(self) -> None:
        """Answer every job still queued: the writer is stopping."""
        while not self._queue.empty():
            _, future, _ = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))

    async def _wait_for_checkpoint(self) -> None:
        """While a checkpoint completes, wait for it, but never past ``MAX_PAUSE``."""
        paused = self._paused
        if paused is None:
            return
        remaining = self._paused_until - asyncio.get_running_loop().time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(paused), remaining)

    async def _next_batch(self) -> list[Queued]:
        """The next jobs to commit together (see ``_gather_siblings``)."""
        batch = [await self._queue.get()]
        self._collecting = True
        try:
            await self._gather_siblings()
            # After gathering, so that a pause that began meanwhile holds this batch too.
            await self._wait_for_checkpoint()
        except asyncio.CancelledError:
            # The writer is stopping: answer the job already taken off the queue.
            _, future, _ = batch[0]
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
            raise
        finally:
            self._collecting = False
        while len(batch) < MAX_BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def _batch_failed(self, batch: list[Queued], exc: Exception) -> None:
        """The commit itself failed: nobody's data is in."""
        error = self._failed(exc)
        if isinstance(error, DomainError):
            log.warning("write batch failed: %s", exc)
        else:
            log.exception("write batch failed")
        for _, future, _ in batch:
            if not future.done():
                future.set_exception(error)

    def _batch_committed(
        self, batch: list[Queued], outcomes: list[Any], events: list[repository.StoredEvent]
    ) -> None:
        """Publish the batch's events, then answer each job with its own outcome."""
        self._committed(events)
        for (_, future, _), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away (client disconnected)
                continue
            if isinstance(outcome, Exception):
                future.set_exception(self._failed(outcome))
            else:
                future.set_result(outcome)

    async def _run(self) -> None:
        assert self._conn is not None
        while True:
            batch = await self._next_batch()
            try:
                batch = await self._begin_for(batch)
                if not batch:
                    continue
                started = time.perf_counter()
                jobs = [job for job, _, _ in batch]
                if any(getattr(job, "heavy", False) for job in jobs):
                    outcomes, events = await self._run_in_thread(jobs)
                else:
                    outcomes, events = run_in_transaction(self._conn, jobs, self._cache)
                metrics.COMMIT_JOBS.observe(len(batch))
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            except Exception as exc:
                self._batch_failed(batch, exc)
            else:
                self._batch_committed(batch, outcomes, events)
            if self._stopped:  # (a heavy batch finished after the stop began)
                return

    async def _run_in_thread(
        self, jobs: list[Job]
    ) -> tuple[list[Any], list[repository.StoredEvent]]:
        """``run_in_transaction`` in a thread (see ``heavy``), which it always finishes: a
        stop waits for it before closing the connection under it."""
        conn = self._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        running = self._in_thread = loop.run_in_executor(
            None, run_in_transaction, conn, jobs, self._cache
        )
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            # The writer is stopping: the transaction ends in the thread, and its callers
            # get their answers (``_run`` then returns, as ``_stopped`` says).
            return await running
        finally:
            self._in_thread = None

    async def _begin_for(self, batch: list[Queued]) -> list[Queued]:
        """Take the write lock for a batch, sleeping (not blocking) while another has it.

        Returns the jobs still wanted: those whose deadline passed meanwhile are answered
        503 and dropped.
        """
        loop = asyncio.get_running_loop()
        delay = 0.001
        while not self._try_begin():
            now = loop.time()
            if self._locked_since is None:
                self._locked_since = time.monotonic()
            elif not self._lock_said and time.monotonic() - self._locked_since >= LOCK_SAY_AFTER:
                # Not at once: two servers on one file take turns with the lock all the
                # time, and said so dozens of times a minute.
                self._lock_said = True
                log.warning(
                    "another program holds the database write lock (for %.1f s now); writes wait",
                    time.monotonic() - self._locked_since,
                )
            waiting = []
            for item in batch:
                if item[2] > now and not item[1].done():
                    waiting.append(item)
                elif not item[1].done():
                    item[1].set_exception(Unavailable(LOCKED, retry_after=1))
            batch = waiting
            if not batch:
                return batch
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_RETRY_MAX)
        return batch

    async def _checkpoints(self) -> None:
        """Keep the WAL short: copy it into the database in the background.

        A checkpoint on another connection copies frames while the writer keeps
        appending, so under sustained load it never catches up, and SQLite only rewinds
        the WAL after a checkpoint that did. So the bulk of the copying runs in a thread
        every ``CHECKPOINT_EVERY``, and once the WAL holds ``REWIND_AT_FRAMES`` the writer
        pauses (begins no transaction) while one more pass, still in the thread, copies
        the few frames appended meanwhile and syncs the database file: the checkpoint
        completes, and the next commit rewinds the WAL and overwrites its already
        allocated pages instead of growing the file. During that pause (~5-8 ms here,
        mostly waiting for the disk) posts wait, but the event loop does not: it keeps
        reading, validating and answering everything else.
        """
        failing = False
        loop = asyncio.get_running_loop()
        with closing(await asyncio.to_thread(connect_sync, self._path)) as conn:
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                try:
                    _, frames, _ = await _finish_in_thread(_checkpoint, conn)
                    if frames >= REWIND_AT_FRAMES:
                        self._let_go_of_begun()
                        self._paused = loop.create_future()
                        self._paused_until = loop.time() + MAX_PAUSE
                        try:
                            await _finish_in_thread(_checkpoint, conn)
                        finally:
                            self._paused.set_result(None)
                            self._paused = None
                except sqlite3.Error as exc:
                    # One line per episode (a full disk fails every try until space is freed).
                    if not failing:
                        log.error("WAL checkpoint failed: %s (retrying quietly)", exc)
                    failing = True
                    if isinstance(storage_error(exc), DiskFull):
                        self.disk.disk_full()
                else:
                    if failing:
                        log.warning("WAL checkpoint works again")
                    failing = False


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """A passive checkpoint: (busy, frames in the WAL, frames copied)."""
    return cast(
        "tuple[int, int, int]", tuple(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
    )

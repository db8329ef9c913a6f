"""The writer's group commit on a real SQLite file: who waits for whom, and who does not."""

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.db import writer as writer_module
from backend.db.repository import StoredEvent
from backend.db.writer import WriteContext, Writer


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[Writer]:
    """A started writer on a real SQLite file (``w.db``), stopped after the test."""
    published: list[list[StoredEvent]] = []
    started = Writer(tmp_path / "w.db", published.append)
    await started.start()
    yield started
    await started.stop()


def job(ctx: WriteContext) -> WriteContext:
    """Returns its transaction's context: jobs committed together share one."""
    ctx.conn.execute("CREATE TABLE IF NOT EXISTS hits (n INTEGER)")
    ctx.conn.execute("INSERT INTO hits VALUES (1)")
    return ctx


def commits(contexts: list[WriteContext]) -> int:
    """How many transactions these jobs ran in (the contexts are all alive, ids unique)."""
    return len({id(c) for c in contexts})


async def test_a_lone_run_commits_at_once_and_concurrent_runs_share_a_commit(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs stay "active" for the whole test, however slow the machine running it.
    monkeypatch.setattr(writer_module, "ACTIVE_WINDOW", 60.0)
    alone = [await writer.submit(job, source="run-0") for _ in range(3)]
    assert commits(alone) == 3  # one transaction each, no waiting for company

    # Eight runs post; from then on each round of their posts is one commit.
    await asyncio.gather(*(writer.submit(job, source=f"run-{i}") for i in range(8)))
    rounds = []
    for _ in range(3):
        rounds.append(
            await asyncio.gather(*(writer.submit(job, source=f"run-{i}") for i in range(8)))
        )
    assert [commits(r) for r in rounds] == [1, 1, 1]


async def test_the_batch_waits_for_a_late_sibling_only_briefly(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows wide enough that a loaded test machine cannot blur them.
    monkeypatch.setattr(writer_module, "BATCH_WINDOW", 0.3)
    monkeypatch.setattr(writer_module, "ACTIVE_WINDOW", 60.0)
    await asyncio.gather(writer.submit(job, source="a"), writer.submit(job, source="b"))

    async def late_b() -> WriteContext:
        await asyncio.sleep(0.03)
        return await writer.submit(job, source="b")

    assert commits(await asyncio.gather(writer.submit(job, source="a"), late_b())) == 1
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.submit(job, source="a")  # "b" is active but sends nothing now
    assert 0.25 < loop.time() - started < 1.0


async def test_jobs_without_a_source_never_wait(writer: Writer) -> None:
    together = await asyncio.gather(*(writer.submit(job) for _ in range(5)))
    assert commits(together) == 1  # queued together, committed together
    assert commits([await writer.submit(job) for _ in range(2)]) == 2


async def test_the_wal_is_rewound_under_sustained_writes(
    writer: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 0.02)
    blob = os.urandom(8000)

    def insert_blob(ctx: WriteContext) -> None:
        ctx.conn.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
        ctx.conn.execute("INSERT INTO blobs VALUES (?)", (blob,))

    loop = asyncio.get_running_loop()
    end, commits = loop.time() + 1.5, 0
    while loop.time() < end:
        await writer.submit(insert_blob, source="run")
        commits += 1
        await asyncio.sleep(0)  # as a server does between requests
    wal = (tmp_path / "w.db-wal").stat().st_size
    # Every commit appended at least two pages; a WAL that was never rewound would
    # hold them all.
    assert commits > 500 and wal < commits * 8000 / 4


def write_from_another_process(path: Path, timeout: float) -> float:
    """What the CLI does: one write on its own connection; returns how long it took."""
    started = time.monotonic()
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS cli (n INTEGER)")
        conn.execute("INSERT INTO cli VALUES (1)")
        conn.execute("COMMIT")
    finally:
        conn.close()
    return time.monotonic() - started


async def test_a_lone_runs_begun_transaction_never_locks_others_out(
    writer: Writer, tmp_path: Path
) -> None:
    await writer.submit(job, source="run")  # commits, then begins the next one ahead
    await asyncio.sleep(0.1)  # well past HOLD_BEGUN
    # Idle: the lock was let go, so a writer that will not wait at all gets in.
    await asyncio.to_thread(write_from_another_process, tmp_path / "w.db", 0)

    # Posting back to back: the lock is still left free now and then.
    stop = asyncio.Event()

    async def post_forever() -> None:
        while not stop.is_set():
            await writer.submit(job, source="run")
            await asyncio.sleep(0)

    poster = asyncio.create_task(post_forever())
    took = await asyncio.to_thread(write_from_another_process, tmp_path / "w.db", 10)
    stop.set()
    await poster
    assert took < 3

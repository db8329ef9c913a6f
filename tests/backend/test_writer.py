"""The writer's group commit on a real SQLite file: who waits for whom, and who does not."""

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from backend.db import writer as writer_module
from backend.db.repository import StoredEvent
from backend.db.writer import WriteContext, Writer, WriterCache, cache_safe, run_in_transaction
from backend.services import ingest
from backend.services.sweeper import sweep_job

# the SQLite writer's batching, WAL and locks
pytestmark = pytest.mark.sqlite_only


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


async def post(writer: Writer, job=job, received_for: float = 0.0) -> WriteContext:
    """A live post as the handler makes it: received, read and decoded, then submitted."""
    with writer.post() as live:
        await asyncio.sleep(received_for)
        return await writer.submit(job, live)


async def test_a_lone_post_commits_at_once_and_concurrent_posts_share_a_commit(
    writer: Writer,
) -> None:
    alone = [await post(writer) for _ in range(3)]
    assert commits(alone) == 3  # one transaction each, no waiting for company

    # Eight posts in flight at once: one commit serves them all, round after round.
    rounds = [await asyncio.gather(*(post(writer) for _ in range(8))) for _ in range(3)]
    assert [commits(r) for r in rounds] == [1, 1, 1]


async def test_a_batch_waits_only_for_posts_received_and_only_briefly(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window wide enough that a loaded test machine cannot blur it.
    monkeypatch.setattr(writer_module, "BATCH_WINDOW", 0.3)
    loop = asyncio.get_running_loop()
    # A post still being decoded when the batch forms is waited for, and shares the commit.
    together = await asyncio.gather(post(writer), post(writer, received_for=0.03))
    assert commits(together) == 1
    # One that takes longer than the window does not hold the other up for more than it.
    started = loop.time()
    slow = asyncio.create_task(post(writer, received_for=2.0))
    await asyncio.sleep(0)
    await post(writer)
    assert 0.25 < loop.time() - started < 1.5
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    # Many runs but one post at a time (64 runs over one connection): nobody waits.
    started = loop.time()
    sequential = [await post(writer) for _ in range(64)]
    assert commits(sequential) == 64 and loop.time() - started < 0.3 * 3


async def test_jobs_of_no_post_never_wait(writer: Writer) -> None:
    together = await asyncio.gather(*(writer.submit(job) for _ in range(5)))
    assert commits(together) == 1  # queued together, committed together
    assert commits([await writer.submit(job) for _ in range(2)]) == 2


async def test_the_wal_is_rewound_under_sustained_writes(
    writer: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 0.02)
    # Past this many frames the writer pauses while a checkpoint completes in its thread.
    monkeypatch.setattr(writer_module, "REWIND_AT_FRAMES", 64)
    blob = os.urandom(8000)

    def insert_blob(ctx: WriteContext) -> None:
        ctx.conn.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
        ctx.conn.execute("INSERT INTO blobs VALUES (?)", (blob,))

    loop = asyncio.get_running_loop()
    # A time and a count, not a rate: a loaded machine (CI under four test processes)
    # once made fewer than 500 commits in 1.5 s.
    end, commits = loop.time() + 1.5, 0
    while commits < 200 or loop.time() < end:
        await post(writer, insert_blob)
        commits += 1
        await asyncio.sleep(0)  # as a server does between requests
    wal = (tmp_path / "w.db-wal").stat().st_size
    # Every commit appended at least two pages; a WAL that was never rewound would
    # hold them all (its peak between two rewinds depends on the machine's pace).
    assert wal < commits * 8000 / 2


async def test_posts_wait_for_a_completing_checkpoint_only_briefly(
    writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 0.01)
    monkeypatch.setattr(writer_module, "REWIND_AT_FRAMES", 0)  # pause after every pass
    real_checkpoint = writer_module._checkpoint
    passes: list[float] = []
    stuck = threading.Event()

    def checkpoint_stuck_on_the_disk(conn: sqlite3.Connection) -> tuple[int, int, int]:
        passes.append(time.monotonic())
        if len(passes) % 2 == 0:  # the pass the writer pauses for
            stuck.set()
            time.sleep(1.0)
        return real_checkpoint(conn)

    monkeypatch.setattr(writer_module, "_checkpoint", checkpoint_stuck_on_the_disk)
    assert await asyncio.to_thread(stuck.wait, 10)
    # The writer is paused now, for a checkpoint that takes a second: a post waits for it
    # at most MAX_PAUSE, then commits anyway.
    assert writer._paused is not None
    started = time.monotonic()
    await asyncio.gather(post(writer), post(writer))
    assert time.monotonic() - started < writer_module.MAX_PAUSE + 0.5
    assert writer._paused is not None, "the checkpoint was still running"


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
    await post(writer)  # commits, then begins the next one ahead
    await asyncio.sleep(0.1)  # well past HOLD_BEGUN
    # Idle: the lock was let go, so a writer that will not wait at all gets in.
    await asyncio.to_thread(write_from_another_process, tmp_path / "w.db", 0)

    # Posting back to back: the lock is still left free now and then.
    stop = asyncio.Event()

    async def post_forever() -> None:
        while not stop.is_set():
            await post(writer)
            await asyncio.sleep(0)

    poster = asyncio.create_task(post_forever())
    took = await asyncio.to_thread(write_from_another_process, tmp_path / "w.db", 10)
    stop.set()
    await poster
    assert took < 3


def live_job(
    token: str, name: str, step: int, clock: Callable[[], float] = time.time, **fields: object
) -> writer_module.Job:
    """The writer job of one DVCLive data post of run ``name`` (``fields``: its payload)."""
    return _job(token, clock, type="data", name=name, step=step, **fields)


def done_job(token: str, name: str, clock: Callable[[], float]) -> writer_module.Job:
    """The writer job of run ``name``'s ``done`` post."""
    return _job(token, clock, type="done", name=name)


def _job(token: str, clock: Callable[[], float], **fields: object) -> writer_module.Job:
    body = {
        "repo_url": "git@github.com:acme/vision.git",
        "baseline_sha": "f" * 40,
        "client": "dvclive",
        **fields,
    }
    return ingest.ingest_job(token, ingest.parse(json.dumps(body).encode()), clock)


def metrics(loss: float) -> dict[str, object]:
    return {"metrics": {"dvclive/metrics.json": {"data": {"loss": loss}}}}


def rows_of(step: int, loss: float) -> dict[str, object]:
    return {"plots": {"dvclive/plots/metrics/loss.tsv": {"data": [{"step": step, "loss": loss}]}}}


def test_a_batch_writes_its_events_in_emission_order_once_with_final_rows(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    """Deferred event rows and progress updates: what is stored is what was published."""
    conn, token = ingest_db
    cache = WriterCache()

    def post(name: str, step: int, loss: float | None = None) -> writer_module.Job:
        return live_job(token, name, step, **(rows_of(step, 1) if loss is None else metrics(loss)))

    run_in_transaction(conn, [post("a", 0, 1.0), post("b", 0, 1.0)], cache)  # created

    @cache_safe
    def fails(ctx: WriteContext) -> None:
        post("a", 99, 9.9)(ctx)  # its progress and event must vanish with it
        raise ValueError("refused")

    batch = [post("a", 1, 0.5), post("a", 1), post("b", 1, 0.7), post("a", 2, 0.25)]
    _, events = run_in_transaction(conn, batch, cache)
    # a's two progress posts: one experiment event, where the first was, with a's last row
    kinds = [(e.kind, json.loads(e.data).get("name")) for e in events]
    assert kinds == [("experiment", "a"), ("points", None), ("experiment", "b")]
    rows = {r["name"]: r for r in (json.loads(e.data) for e in events) if "name" in r}
    assert rows["a"]["step"] == 2 and rows["a"]["metrics"] == {"loss": 0.25}
    row_json = conn.execute("SELECT row_json FROM experiments WHERE name = 'a'").fetchone()[0]
    assert json.loads(row_json) == rows["a"]  # the listing shows what the stream said

    # A job failing mid-batch: the others' events stored and published alike, its own not.
    batch = [post("a", 3, 0.2), fails, post("b", 3, 0.6), post("a", 3)]
    outcomes, events = run_in_transaction(conn, batch, cache)
    assert isinstance(outcomes[1], ValueError) and len(events) == 3
    stored = conn.execute("SELECT id, kind, data FROM events ORDER BY id").fetchall()
    assert [tuple(r) for r in stored[-len(events) :]] == [(e.id, e.kind, e.data) for e in events]
    ids = [r[0] for r in stored]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # no gap, no duplicate
    assert conn.execute("SELECT step FROM experiments WHERE name = 'a'").fetchone()[0] == 3


def test_other_jobs_in_a_batch_see_deferred_progress_and_rows_never_go_back(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    """A sweep batched with a run's post sees that post; a full row is never older than
    an earlier event's; the stored row is what the last event said (found in review)."""
    conn, token = ingest_db
    cache = WriterCache()
    t0 = 1_000_000.0

    def post(t: float, step: int, **fields: object) -> writer_module.Job:
        return live_job(token, "a", step, lambda: t, **fields)

    def rows(events: list[StoredEvent]) -> list[dict[str, object]]:
        return [json.loads(e.data) for e in events if e.kind == "experiment"]

    def stored() -> dict[str, object]:
        return json.loads(conn.execute("SELECT row_json FROM experiments").fetchone()[0])

    run_in_transaction(conn, [post(t0, 0)], cache)
    # Silent past stale_after (600 s), then it posts, and a sweep lands in the same batch.
    now = t0 + 700
    _, events = run_in_transaction(conn, [post(now, 1, **metrics(0.5)), sweep_job(600, now)], cache)
    assert [(r["status"], r["step"]) for r in rows(events)] == [("running", 1)]
    assert conn.execute("SELECT status FROM experiments").fetchone()[0] == "running"
    assert stored() == rows(events)[-1]

    # Progress, then a full change (new params), then rows only, of one run in one batch.
    batch = [
        post(now + 100, 2, **metrics(0.5)),
        post(now + 100.2, 2, params={"p.yaml": {"lr": 0.1}}),
        post(now + 100.4, 2, **rows_of(2, 0.4)),
    ]
    _, events = run_in_transaction(conn, batch, cache)
    seen = [r["updated_at"] for r in rows(events)]
    assert seen == sorted(seen) and all(r["params"] for r in rows(events)[-1:])
    assert stored() == rows(events)[-1]


def test_the_cache_keeps_only_runs_that_are_posting(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    """Ended and silent runs leave the writer's cache with their series, so the server's
    memory stays flat however many runs it has seen (found by bench.soak)."""
    conn, token = ingest_db
    cache = WriterCache()
    t0 = 1_000_000.0
    jobs = [
        live_job(token, name, 0, lambda: t0, **metrics(0.5), **rows_of(0, 0.5))
        for name in ("ends", "goes-quiet", "posts-on")
    ]
    run_in_transaction(conn, jobs, cache)
    assert sorted(k[3] for k in cache.experiments) == ["ends", "goes-quiet", "posts-on"]
    assert len(cache.series) == len(cache.series_top) == 3
    ended = done_job(token, "ends", lambda: t0 + 1)
    later = t0 + 700  # past stale_after: the quiet one is swept, the other posts on
    run_in_transaction(
        conn,
        [ended, live_job(token, "posts-on", 1, lambda: later, **rows_of(1, 0.4))],
        cache,
    )
    run_in_transaction(conn, [sweep_job(600, later)], cache)
    assert [k[3] for k in cache.experiments] == ["posts-on"]
    (kept,) = cache.series_names
    assert list(cache.series) == [(kept, "loss")] and len(cache.series_top) == 1
    statuses = dict(conn.execute("SELECT name, status FROM experiments").fetchall())
    assert statuses == {"ends": "completed", "goes-quiet": "stopped", "posts-on": "running"}
    # A run that resumes after it was swept is read again and goes on where it was.
    run_in_transaction(conn, [live_job(token, "goes-quiet", 1, lambda: later + 1)], cache)
    row = conn.execute("SELECT status, step FROM experiments WHERE name = 'goes-quiet'").fetchone()
    assert tuple(row) == ("running", 1)


def test_many_silent_runs_are_stopped_in_parts_with_one_project_row_per_part(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    """A server back from a long pause finds many silent runs: each transaction stops a
    bounded number, longest silent first, and announces their project once (counting a
    big project per run held every request for a minute; found with bench.read)."""
    conn, token = ingest_db
    t0 = 1_000_000.0
    jobs = [live_job(token, f"run-{i}", 0, lambda i=i: t0 + i) for i in range(5)]
    run_in_transaction(conn, jobs)
    later = t0 + 700
    parts = []
    for _ in range(4):
        (stopped,), events = run_in_transaction(conn, [sweep_job(600, later, at_most=2)])
        rows = [json.loads(e.data) for e in events]
        parts.append(
            (
                stopped,
                [
                    (e.kind, r.get("name"), r.get("running"))
                    for e, r in zip(events, rows, strict=True)
                ],
            )
        )
    assert parts == [
        (
            2,
            [
                ("experiment", "run-0", None),
                ("experiment", "run-1", None),
                ("project", "vision", 3),
            ],
        ),
        (
            2,
            [
                ("experiment", "run-2", None),
                ("experiment", "run-3", None),
                ("project", "vision", 1),
            ],
        ),
        (1, [("experiment", "run-4", None), ("project", "vision", 0)]),
        (0, []),
    ]
    statuses = {r[0] for r in conn.execute("SELECT status FROM experiments")}
    assert statuses == {"stopped"}


def test_an_ended_run_posted_to_twice_in_a_batch_keeps_one_true_row(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    """A late post to an ended run defers its progress: the run must stay cached until
    that is written, or the batch's next post reads the table's older row (found in
    review)."""
    conn, token = ingest_db
    cache = WriterCache()
    t0 = 1_000_000.0
    run_in_transaction(conn, [live_job(token, "a", 3, lambda: t0, **metrics(0.5))], cache)
    ended = done_job(token, "a", lambda: t0 + 1)
    run_in_transaction(conn, [ended], cache)
    late = live_job(token, "a", 3, lambda: t0 + 2, **metrics(0.4))
    resumed = live_job(token, "a", 4, lambda: t0 + 3, **metrics(0.3))
    run_in_transaction(conn, [late, resumed], cache)
    status, step, row_json = conn.execute(
        "SELECT status, step, row_json FROM experiments WHERE name = 'a'"
    ).fetchone()
    row = json.loads(row_json)
    assert (status, step) == (row["status"], row["step"]) == ("running", 4)
    assert row["metrics"] == {"loss": 0.3}


async def test_a_heavy_posts_transaction_runs_in_a_thread_while_the_loop_goes_on(
    writer: Writer,
) -> None:
    """A post of megabytes of images held every request for ~100 ms while SQLite wrote
    its blobs on the event loop; now only writes wait for it, as they must."""
    release = threading.Event()
    ran_on: list[str] = []
    running = asyncio.Event()
    loop = asyncio.get_running_loop()

    @writer_module.heavy
    def big(ctx: WriteContext) -> str:
        ran_on.append(threading.current_thread().name)
        loop.call_soon_threadsafe(running.set)
        release.wait(10)  # (SQLite writing 22 MB of blobs)
        ctx.conn.execute("CREATE TABLE IF NOT EXISTS hits (n INTEGER)")
        ctx.conn.execute("INSERT INTO hits VALUES (2)")
        return "big"

    heavy_post = asyncio.ensure_future(post(writer, big))
    await asyncio.wait_for(running.wait(), 10)  # the loop turns while the heavy job runs
    assert ran_on != [threading.current_thread().name]
    lone = asyncio.ensure_future(post(writer))  # a write waits for the one writer...
    for _ in range(20):
        await asyncio.sleep(0.001)  # ...however long the loop turns meanwhile
    assert not lone.done() and not heavy_post.done()
    release.set()
    assert await heavy_post == "big"
    await lone
    rows = await asyncio.to_thread(_hits, writer)
    assert rows == [(2,), (1,)]  # both committed, in order


def _hits(writer: Writer) -> list[tuple[int]]:
    with sqlite3.connect(writer._path) as conn:
        return conn.execute("SELECT n FROM hits ORDER BY rowid").fetchall()


async def test_a_writer_stopping_during_a_heavy_transaction_lets_it_commit_first(
    tmp_path: Path,
) -> None:
    started = Writer(tmp_path / "w.db", lambda events: None)
    await started.start()
    release = threading.Event()

    @writer_module.heavy
    def big(ctx: WriteContext) -> None:
        release.wait(10)
        ctx.conn.execute("CREATE TABLE hits (n INTEGER)")
        ctx.conn.execute("INSERT INTO hits VALUES (3)")

    submitted = asyncio.ensure_future(started.submit(big))
    await asyncio.sleep(0.05)
    stopping = asyncio.ensure_future(started.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # it waits for the thread, not closing under it
    release.set()
    await stopping
    assert submitted.done() and submitted.exception() is None  # answered: committed
    assert await asyncio.to_thread(_hits, started) == [(3,)]

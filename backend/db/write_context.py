"""What a write job gets: the connection, the writer's cache, and the writes it defers.

On SQLite the stream event rows and the progress updates of a batch are not written one
statement at a time as jobs emit them: the context numbers each event at once (so the
order of the stream is the order of emission) and writes them all, with the progress
updates, in one ``executemany`` each just before the commit (``flush``). A step's progress
update also coalesces: an experiment changed by several posts of one batch is written,
encoded and announced once, with its final row. Measured on the ingestion path, a Python
``execute`` costs several microseconds before SQLite does anything, and an event insert
with ``RETURNING`` twice that; the deferral is what makes a batch cost less per post than
a lone post.

Only ingest jobs (``shares_deferred``) run with writes pending: every other job (the
sweeper's, which reads when runs last posted; account and project jobs) runs after a flush,
and a full row emitted for an experiment flushes the pending progress first, so no event
carries a newer row than a later one and the stored row is what the last event said.

On PostgreSQL event ids come from a sequence shared by every server process, so events
and progress updates are written at once, as jobs emit them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from backend.db import repository
from backend.db.connection import Conn, is_postgres


@dataclass
class WriterCache:
    """What the writer remembers between batches so hot posts skip their SELECTs.

    Only the writer changes the database while the server runs, so the cache stays true;
    it is dropped whenever another connection commits (the CLI, say, or on PostgreSQL
    another server process: SQLite's ``data_version`` or the commit count in
    ``instance.writes`` tells), after any job that is not marked cache-safe, and after
    any failed job, whose savepoint rollback may have undone what the cache saw.
    """

    principals: dict[bytes, repository.Principal] = field(default_factory=dict)
    touched: dict[int, float] = field(default_factory=dict)
    experiments: dict[tuple[int, str, str, str], repository.ExperimentRecord] = field(
        default_factory=dict
    )
    series: dict[tuple[int, str], int] = field(default_factory=dict)
    series_top: dict[int, int] = field(default_factory=dict)
    series_names: dict[int, list[str]] = field(default_factory=dict)
    """The names in ``series`` by experiment id (what ``forget`` drops with it)."""
    logged_points: int | None = None
    """Rows in the points log, when known."""
    last_event_id: int | None = None
    """The newest event id given out (SQLite), when known."""
    data_version: int = -1
    step_samples: dict[int, deque[tuple[float, int]]] = field(default_factory=dict)
    """The (time, step) samples each running experiment's rate is measured from, by id.
    What this process saw, not what the database holds, so ``clear`` keeps them: with two
    processes committing in turns the cache was dropped at every batch, and no run ever
    had a rate (nor could be found stalled)."""

    MAX_EXPERIMENTS = 20_000
    MAX_SAMPLED = 2_000
    """Runs whose step samples are kept (~6 KB each when full): a run that ended on
    another process leaves them here until newer runs push them out (20,000 took 155 MB)."""

    def remember(self, record: repository.ExperimentRecord) -> None:
        """Cache an experiment's row as just written."""
        self.experiments[(record.poster_id, record.repo_key, record.baseline_sha, record.name)] = (
            record
        )
        samples = record.step_samples
        if samples is not None and self.step_samples.get(record.id) is not samples:
            self.step_samples[record.id] = samples
            if len(self.step_samples) > self.MAX_SAMPLED:
                del self.step_samples[next(iter(self.step_samples))]

    def recall(self, record: repository.ExperimentRecord) -> repository.ExperimentRecord:
        """A run read from the database takes back the step samples this process kept."""
        if record.step_samples is None:
            record.step_samples = self.step_samples.get(record.id)
        return record

    def remember_series(self, experiment_id: int, name: str, series_id: int) -> None:
        """Cache the id of an experiment's series."""
        self.series[(experiment_id, name)] = series_id
        self.series_names.setdefault(experiment_id, []).append(name)

    def forget(self, record: repository.ExperimentRecord) -> None:
        """Drop a run that ended (or went silent) and its series: the cache holds the runs
        that are posting, so its memory stays flat however many runs a server has seen."""
        key = (record.poster_id, record.repo_key, record.baseline_sha, record.name)
        self.experiments.pop(key, None)
        self.step_samples.pop(record.id, None)
        for name in self.series_names.pop(record.id, ()):
            series_id = self.series.pop((record.id, name), None)
            if series_id is not None:
                self.series_top.pop(series_id, None)

    def clear(self) -> None:
        """Forget everything."""
        self.principals.clear()
        self.touched.clear()
        self.experiments.clear()
        self.series.clear()
        self.series_top.clear()
        self.series_names.clear()
        self.logged_points = None
        self.last_event_id = None


@dataclass
class _Pending:
    """An event numbered but not yet written; a progress event takes its row at flush."""

    id: int
    event: repository.NewEvent | None
    record: repository.ExperimentRecord | None = None

    def announced(self) -> repository.NewEvent:
        """The event as written: a progress event takes its experiment's row as it is now."""
        if self.record is not None:
            return _experiment_event(self.record)
        assert self.event is not None
        return self.event


@dataclass
class WriteContext:
    """What a write job gets: the connection, the cache and a way to emit stream events."""

    conn: Conn
    cache: WriterCache = field(default_factory=WriterCache)
    events: list[repository.StoredEvent] = field(default_factory=list)
    """The events written so far in this transaction, in id order (published after commit)."""
    _pending: list[_Pending] = field(default_factory=list)
    _dirty: dict[int, repository.ExperimentRecord] = field(default_factory=dict)
    _ended: list[repository.ExperimentRecord] = field(default_factory=list)
    """Runs that ended with their progress still deferred: they leave the cache at flush
    (until then a later post of the batch must find this very record, not the table's)."""
    """Experiments whose progress is to be written at flush, by id; each has a pending
    event, still its latest (a full row flushes them first), which will carry its row."""

    def __post_init__(self) -> None:
        self._defer = not is_postgres(self.conn)

    def emit(self, event: repository.NewEvent) -> None:
        """Record a stream event in the same transaction; published after commit."""
        if not self._defer:
            self.events.append(repository.insert_event(self.conn, event))
            return
        if event.kind == "experiment" and self._dirty:
            # A full row announced now: the pending progress rows are written first, as
            # they are now, so no earlier event carries a newer row than this one, and a
            # later progress change gets an event after it.
            self.flush()
        self._pending.append(_Pending(self._next_id(), event))

    def progress(self, record: repository.ExperimentRecord) -> None:
        """An experiment's step, metrics or ``updated_at`` changed: write and announce it.

        Deferred to ``flush`` on SQLite, and written once per batch however many posts
        of the batch changed it; its event goes out where the first change was, with the
        row as it is at the end of the batch.
        """
        if not self._defer:
            repository.update_experiment_progress(self.conn, record)
            self.emit(_experiment_event(record))
            return
        if record.id not in self._dirty:
            self._pending.append(_Pending(self._next_id(), None, record))
        self._dirty[record.id] = record

    def ended(self, record: repository.ExperimentRecord) -> None:
        """A run ended (or went silent): let it leave the cache once nothing of it waits."""
        if record.id in self._dirty:
            self._ended.append(record)
        else:
            self.cache.forget(record)

    def flush(self) -> None:
        """Write what was deferred (before a commit, and before jobs that read freely)."""
        if self._dirty:
            repository.update_experiments_progress(self.conn, list(self._dirty.values()))
            self._dirty.clear()
        for record in self._ended:
            self.cache.forget(record)
        self._ended.clear()
        if not self._pending:
            return
        stored = [repository.numbered(p.announced(), p.id) for p in self._pending]
        self._pending.clear()
        repository.insert_numbered_events(self.conn, stored, time.time())
        self.events.extend(stored)

    def discard(self) -> None:
        """Forget what was deferred (its savepoint was rolled back)."""
        self._pending.clear()
        self._dirty.clear()
        self._ended.clear()

    def _next_id(self) -> int:
        last = self.cache.last_event_id
        if last is None:
            last = repository.last_event_id(self.conn)
        self.cache.last_event_id = last + 1
        return last + 1


def _experiment_event(record: repository.ExperimentRecord) -> repository.NewEvent:
    return repository.NewEvent(
        kind="experiment",
        data=record.row_json,
        repo_key=record.repo_key,
        subdir=record.subdir,
        poster_id=record.poster_id,
    )

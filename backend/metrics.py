"""The server's Prometheus instruments, in one place (served at ``GET /metrics``).

Instruments live in their own registry, so only livestudio's figures (and the process's)
are exported. Each is updated where the thing happens: answers to ``/api/live`` in its
handler, commits in the writer, subscribers in the event stream, sweeps in the sweeper,
alerts in the watch evaluator.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

POSTS = Counter(
    "livestudio_posts",
    "Live posts (/api/live) answered, by HTTP status.",
    ["status"],
    registry=REGISTRY,
)
COMMIT_JOBS = Histogram(
    "livestudio_commit_jobs",
    "Jobs (posts and other writes) committed together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "livestudio_commit_seconds",
    "Time from a transaction's first job to its commit.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
    registry=REGISTRY,
)
STREAM_SUBSCRIBERS = Gauge(
    "livestudio_stream_subscribers",
    "Event-stream clients connected now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SWEEPS = Counter("livestudio_stale_sweeps", "Stale-run sweeps run.", registry=REGISTRY)
STOPPED = Counter(
    "livestudio_runs_stopped",
    "Running experiments turned Stopped for going silent.",
    registry=REGISTRY,
)
ALERTS = Counter("livestudio_alerts", "Watch firings recorded.", registry=REGISTRY)
WEBHOOK_POSTS = Counter(
    "livestudio_webhook_posts",
    "Attempts to post an alert to a webhook, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)

_post_counters: dict[int, Counter] = {}

# With several processes (``serve --workers``) the process collector would describe only
# the one that answers: each process records its own figures instead, labelled by pid.
_PER_PROCESS = {
    name: Gauge(name, text, registry=None, multiprocess_mode="liveall")
    for name, text in (
        ("process_resident_memory_bytes", "Resident memory of each server process."),
        ("process_cpu_seconds_total", "User and system CPU time of each server process."),
        ("process_open_fds", "Open file descriptors of each server process."),
    )
}
RECORD_PROCESS_EVERY = 5.0
"""Seconds between two records of a process's own figures under ``serve --workers``."""


def several_processes() -> bool:
    """Whether this is one of ``serve --workers``'s processes (figures kept in files)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


_OWN = ProcessCollector(registry=None)


def record_process() -> None:
    """Record this process's memory, CPU time and open files (read as the process
    collector reads them) for ``/metrics`` in whichever process answers."""
    for family in _OWN.collect():
        for sample in family.samples:
            gauge = _PER_PROCESS.get(sample.name)
            if gauge is not None:
                gauge.set(sample.value)


async def record_process_forever() -> None:
    """``record_process`` every few seconds, for as long as the server runs."""
    while True:
        record_process()
        await asyncio.sleep(RECORD_PROCESS_EVERY)


def forget_dead_processes() -> None:
    """Drop the live gauges of processes that died (a worker killed and restarted): their
    stream subscribers were counted for good, and their memory listed, otherwise.

    Workers that start together may both remove a file (the other's removal is no error);
    a new worker given a dead one's pid starts from its own figures, not the dead one's.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    STREAM_SUBSCRIBERS.set(0)  # the file may be a dead worker's of the same pid
    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        pid = path.rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _sibling_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _sibling_alive(pid: int) -> bool:
    """Whether ``pid`` is another worker of this server (a child of the same supervisor):
    a dead worker's pid may be some other process's by now."""
    if pid == os.getpid():
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ppid …": comm may hold spaces and parentheses.
            ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, IndexError):  # no /proc here: whether it runs at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return ppid == os.getppid()


def count_post(status: int) -> None:
    """One answer of ``/api/live`` (children cached: the hot path pays a dict lookup)."""
    counter = _post_counters.get(status)
    if counter is None:
        counter = _post_counters[status] = POSTS.labels(str(status))
    counter.inc()


def exposition() -> bytes:
    """Every instrument in Prometheus' text format.

    With several server processes (``PROMETHEUS_MULTIPROC_DIR`` set by ``serve
    --workers``), every process records into files there, and the figures of all of them
    are added up here, whichever process is asked.
    """
    if several_processes():
        record_process()  # the answering process's own figures are as of now
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)

"""The server's Prometheus instruments, in one place (served at ``GET /metrics``).

Instruments live in their own registry, so only livestudio's figures (and the process's)
are exported. Each is updated where the thing happens: answers to ``/api/live`` in its
handler, commits in the writer, subscribers in the event stream, sweeps in the sweeper,
alerts in the watch evaluator.
"""

from __future__ import annotations

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
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)

"""The background task that turns silent runs Stopped and trims the event table.

It runs on a timer, not on requests, so a run is marked Stopped even when nobody is
posting or looking.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from backend import metrics
from backend.db import repository
from backend.db import watches as watch_store
from backend.db.writer import WriteContext, Writer, cache_safe
from backend.services import events, status
from backend.services.watches import KEEP_ALERTS
from backend.settings import Settings

log = logging.getLogger(__name__)


def sweep_job(stale_after: float, keep_events: int, now: float) -> Callable[[WriteContext], int]:
    """Mark stale Running experiments Stopped, trim events, file points; returns how many.

    It keeps the writer's cache true (the runs it stops leave the cache), so a sweep does
    not make every running experiment reload its row.
    """

    @cache_safe
    def job(ctx: WriteContext) -> int:
        stale = repository.stale_experiments(ctx.conn, now - stale_after)
        for record in stale:
            status.mark_stopped(record, now)
            repository.update_experiment(ctx.conn, record)
            ctx.cache.forget(record)  # silent: a post that resumes it reads it again
            events.experiment_changed(ctx, record, counts_changed=True)
        repository.prune_events(ctx.conn, keep_events)
        watch_store.prune_alerts(ctx.conn, KEEP_ALERTS)
        repository.file_points(ctx.conn)
        ctx.cache.logged_points = 0
        return len(stale)

    return job


async def run_sweeper(writer: Writer, settings: Settings, clock: Callable[[], float]) -> None:
    """Sweep every ``sweep_interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(settings.sweep_interval)
        try:
            stopped = await writer.submit(
                sweep_job(settings.stale_after, settings.event_retention, clock())
            )
            metrics.SWEEPS.inc()
            metrics.STOPPED.inc(stopped)
        except Exception:  # keep sweeping: one failed sweep must not stop the next
            log.exception("stale-run sweep failed")

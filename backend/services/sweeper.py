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
from backend.db.writer import WriteContext, Writer, cache_safe
from backend.services import events, projects, status
from backend.services.errors import DomainError
from backend.settings import Settings

log = logging.getLogger(__name__)


SWEEP_AT_MOST = 200
"""Runs stopped per transaction: a server started after a long pause may find thousands
silent, and one transaction for all of them would hold every request for seconds."""


PRUNE_AT_MOST = 2_000
"""Events deleted per transaction (~1.5 ms here; every request waits for a transaction):
under sustained load tens of thousands go every sweep, and after lowering the retention,
say, millions."""


def sweep_job(
    stale_after: float, now: float, at_most: int = SWEEP_AT_MOST
) -> Callable[[WriteContext], int]:
    """Mark up to ``at_most`` stale Running experiments Stopped and file the points log;
    returns how many it stopped (``at_most`` means there may be more).

    It keeps the writer's cache true (the runs it stops leave the cache), so a sweep does
    not make every running experiment reload its row. Each project whose counts changed
    is announced once, after its rows, not once per run (counting is the costly part).
    """

    @cache_safe
    def job(ctx: WriteContext) -> int:
        stale = repository.stale_experiments(ctx.conn, now - stale_after, at_most)
        places: set[tuple[str, str | None, int]] = set()
        for record in stale:
            if record.before_start is not None:
                # A start, then silence: the run it began died before it posted anything.
                # The experiment goes back to what it was (Stopped, if it was running).
                status.restore(record, record.before_start, now)
                record.before_start = None
            else:
                status.mark_stopped(record, now)
            repository.update_experiment(ctx.conn, record)
            ctx.cache.forget(record)  # silent: a post that resumes it reads it again
            events.experiment_changed(ctx, record, counts_changed=False)
            places.add((record.repo_key, record.subdir, record.poster_id))
        projects = {p for place in places for p in repository.project_ids_showing(ctx.conn, *place)}
        events.projects_changed(ctx, sorted(projects))
        repository.file_points(ctx.conn)
        ctx.cache.logged_points = 0
        return len(stale)

    return job


def prune_job(keep_events: int, at_most: int = PRUNE_AT_MOST) -> Callable[[WriteContext], int]:
    """Drop up to ``at_most`` of the events beyond the newest ``keep_events``; how many."""

    @cache_safe
    def job(ctx: WriteContext) -> int:
        return repository.prune_events(ctx.conn, keep_events, at_most)

    return job


REENCODE_AT_MOST = 500
"""Experiment rows re-encoded per transaction after an upgrade changed their shape."""


def reencode_job(at_most: int = REENCODE_AT_MOST) -> Callable[[WriteContext], int]:
    """Store up to ``at_most`` API rows of an older shape again; returns how many."""

    def job(ctx: WriteContext) -> int:
        return repository.reencode_old_rows(ctx.conn, at_most)

    return job


async def _finish_deletions(writer: Writer) -> None:
    try:
        await projects.finish_deletions(writer)
    except DomainError as exc:  # the next start tries again
        log.warning("finishing project deletions skipped: %s", exc.detail)
    except Exception:
        log.exception("finishing project deletions failed")


async def run_sweeper(writer: Writer, settings: Settings, clock: Callable[[], float]) -> None:
    """Sweep every ``sweep_interval`` seconds until cancelled.

    First, project deletions a stopped server left part-way are finished, and rows stored
    in an older shape (after an upgrade) are stored again, a part at a time: until then
    every listing rebuilds them, which costs a big project ~0.4 s.
    """
    finishing = asyncio.create_task(_finish_deletions(writer))  # beside the sweeps, not before
    try:
        await _reencode_then_sweep(writer, settings, clock)
    finally:
        finishing.cancel()


async def _reencode_then_sweep(
    writer: Writer, settings: Settings, clock: Callable[[], float]
) -> None:
    try:
        while await writer.submit(reencode_job()) >= REENCODE_AT_MOST:
            pass
    except DomainError as exc:  # listings rebuild them meanwhile; the next start tries again
        log.warning("re-encoding experiment rows skipped: %s", exc.detail)
    except Exception:
        log.exception("re-encoding experiment rows failed")
    while True:
        await asyncio.sleep(settings.sweep_interval)
        try:
            now = clock()
            while True:  # in parts, letting posts through in between
                stopped = await writer.submit(sweep_job(settings.stale_after, now))
                metrics.STOPPED.inc(stopped)
                if stopped < SWEEP_AT_MOST:
                    break
            while await writer.submit(prune_job(settings.event_retention)) >= PRUNE_AT_MOST:
                pass
            metrics.SWEEPS.inc()
        except DomainError as exc:  # the database locked by another program, say: one line
            log.warning("stale-run sweep skipped: %s", exc.detail)
        except Exception:  # keep sweeping: one failed sweep must not stop the next
            log.exception("stale-run sweep failed")

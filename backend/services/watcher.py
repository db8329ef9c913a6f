"""The watch evaluator: follows every committed event and fires the watches they meet.

It subscribes to the same channel as the event streams, so it sees exactly what was
committed, in order, whether or not anyone has a TUI open; a timer finds stalled runs,
which no event announces. Work is proportional to the events that match a watch: with no
watch on a project, its events cost one dictionary lookup here.

A firing is written by the single writer, keyed so that it is recorded once (the
``alerts`` table's UNIQUE key; see ``dedupe`` below): a condition that stays true (a loss
below its threshold at every step) fires once, and so does an event seen twice. The firing
job checks again that the watch's owner can still see the experiment.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.channels import ChannelsPlugin, Subscriber

from backend import metrics
from backend.db import repository
from backend.db import watches as store
from backend.db.connection import Reader, database_errors, our_mistake
from backend.db.repository import ProjectScope, StoredEvent
from backend.db.watches import WatchRecord
from backend.db.writer import WriteContext, Writer, cache_safe
from backend.services import webhooks
from backend.services.broadcast import (
    CHANNEL,
    decode_message,
    in_order,
    moved_to,
    stored_events,
)
from backend.services.status import MARKED_FAILED
from backend.services.watches import KEEP_ALERTS, alert_json
from backend.settings import Settings
from shared.api import ExperimentRow, PointsEvent
from shared.text import printable
from shared.values import parse_number
from shared.watches import DEFAULT_STALL_FACTOR, MIN_STALL_SECONDS, AlertInfo

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
"""Firings waiting to be recorded; beyond this they are dropped (with a warning)."""
CATCH_UP_EVERY = 5.0
"""How often the evaluator reads any event the channel did not bring (a fan-out outage)."""
CATCH_UP = b""
"""Put into the evaluator's subscription every ``CATCH_UP_EVERY``: no message is empty."""
MAX_PER_MINUTE = 20
"""Firings of one watch a minute (a storm beyond this is cut off)."""
MAX_DELIVERIES = 16
"""Webhook posts in flight at once, across every watch."""


class _PointsId(msgspec.Struct):
    experiment_id: int


class _Progress(msgspec.Struct):
    """What the stalled check follows of every running run, watched or not."""

    id: int
    name: str
    status: str
    step: int | None = None
    steps_per_s: float | None = None


class _Header(msgspec.Struct):
    """What the evaluator needs of an event while no watch exists (the rest is skipped)."""

    id: int
    kind: str


_headers = msgspec.msgpack.Decoder(list[_Header])
_deleted = msgspec.json.Decoder(_PointsId)  # {"experiment_id": N}
_points_id = msgspec.json.Decoder(_PointsId)
_progress = msgspec.json.Decoder(_Progress)
_row = msgspec.json.Decoder(ExperimentRow)
_points = msgspec.json.Decoder(PointsEvent)


@dataclass
class Run:
    """A running experiment, as far as the stalled check needs it."""

    name: str
    poster_id: int | None
    repo_key: str | None
    subdir: str | None
    step: int | None
    last_step_at: float
    steps_per_s: float | None = None


@dataclass(frozen=True)
class Firing:
    """A condition met: the firing job records it unless it was recorded already."""

    watch_id: int
    experiment_id: int
    dedupe: str
    """Distinguishes firings of one watch on one experiment: the status and step it ended
    at, the metric that went NaN, the step it stalled at; empty for a threshold (once)."""
    what: str
    """What happened, after the experiment's name in the alert's title."""


def fire_job(firing: Firing, now: float) -> Callable[[WriteContext], tuple[AlertInfo, str] | None]:
    """Record a firing and emit its ``alert`` event; returns it with the webhook URL to post."""

    @cache_safe
    def job(ctx: WriteContext) -> tuple[AlertInfo, str] | None:
        watch = store.watch_sync(ctx.conn, firing.watch_id)
        if watch is None:
            return None
        if watch.project_id is not None:
            if not store.project_shows(
                ctx.conn, watch.project_id, watch.user_id, firing.experiment_id
            ):
                return None
            project_id: int | None = watch.project_id
        else:
            project_id = store.first_project_showing(ctx.conn, watch.user_id, firing.experiment_id)
            if project_id is None:
                return None  # the owner can no longer see the experiment
        name = repository.experiment_name(ctx.conn, firing.experiment_id)
        if name is None:
            return None
        target = store.watch_info_sync(ctx.conn, watch.id).target
        scope = "experiment" if watch.experiment_id is not None else "project"
        alert = store.insert_alert(
            ctx.conn,
            watch=watch,
            experiment_id=firing.experiment_id,
            experiment_name=name,
            project_id=project_id,
            dedupe=firing.dedupe,
            now=now,
            title=f"{name}: {firing.what}",
            detail=f"watch {watch.id}: {watch.condition.describe()} on {scope} {target}",
            keep_alerts=KEEP_ALERTS,
        )
        if alert is None:
            return None
        ctx.emit(
            repository.NewEvent(
                kind="alert",
                data=alert_json(alert),
                project_id=project_id,
                member_ids=(watch.user_id,),
            )
        )
        return alert, watch.webhook_url or ""

    return job


async def _mark_catch_ups(subscriber: Subscriber) -> None:
    while True:
        await asyncio.sleep(CATCH_UP_EVERY)
        subscriber.put_nowait(CATCH_UP)


@dataclass
class Watcher:
    """Evaluates every user's watches; one per server process (firings are deduplicated)."""

    writer: Writer
    reader: Reader
    channels: ChannelsPlugin
    settings: Settings
    clock: Callable[[], float]
    watches: list[WatchRecord] = field(default_factory=list)
    by_experiment: dict[int, list[WatchRecord]] = field(default_factory=dict)
    by_project: dict[int, list[WatchRecord]] = field(default_factory=dict)
    scopes: dict[int, ProjectScope] = field(default_factory=dict)
    runs: dict[int, Run] = field(default_factory=dict)
    _queue: asyncio.Queue[Firing] = field(default_factory=lambda: asyncio.Queue(maxsize=MAX_QUEUED))
    _seen: set[tuple[int, int, str]] = field(default_factory=set)
    """Firings recorded (or refused) already: spares the writer a job per matching post."""
    _recent: dict[int, deque[float]] = field(default_factory=dict)
    _deliveries: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_DELIVERIES)
    )
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None
    _evaluated: int | None = None
    """The newest event looked at: after a failure the evaluator goes on from there, so no
    event that arrived meanwhile goes unevaluated."""

    # ------------------------------------------------------------ lifecycle

    async def supervise(self) -> None:
        """Run forever: a failure (the database away at start, say) restarts the evaluator."""
        delay = 1.0
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except database_errors() as exc:
                if our_mistake(exc):  # a bug: the whole traceback
                    log.exception("the watch evaluator failed; restarting in %.0f s", delay)
                else:  # away, or unreadable: one line
                    log.error("the watch evaluator failed (%s); restarting in %.0f s", exc, delay)
            except Exception:
                log.exception("the watch evaluator failed; restarting in %.0f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def run(self) -> None:
        """Follow the channel and the stalled timer until cancelled."""
        try:
            async with self.channels.start_subscription([CHANNEL]) as subscriber:
                await self.reload()
                if self._evaluated is None:  # first start: from now on
                    _, self._evaluated = await repository.event_id_range(self.reader)
                else:  # a restart: what arrived while it was down first
                    await self._catch_up()
                workers = [
                    asyncio.create_task(self._fire_forever()),
                    asyncio.create_task(self._tick_forever()),
                    asyncio.create_task(_mark_catch_ups(subscriber)),
                ]
                try:
                    # Straight from the subscription (no task or timer per message): this
                    # runs for every commit of every run.
                    async for raw in subscriber.iter_events():
                        if raw == CATCH_UP:  # anything the channel did not bring
                            await self._catch_up()
                            continue
                        if not self.watches and self._nothing_to_evaluate(raw):
                            continue
                        for message in decode_message(raw):
                            last = self._evaluated or 0
                            if message.id == last + 1:  # usual: no generator per event
                                await self._evaluate(message)
                                continue
                            async for event in in_order(self.reader, last, message):
                                await self._evaluate(event)
                finally:
                    for task in workers:
                        task.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._client is not None:
                await self._client.aclose()
                self._client = None  # supervise() may run this again: a new one then

    def _nothing_to_evaluate(self, raw: bytes) -> bool:
        """With no watch, only a change of watches matters (``handle``): every other event
        is passed over, reading only its id and kind. True when the message is done with.
        A commit's events are published in one message, in id order.

        It spares the server decoding and evaluating every event of every commit (~7 % of
        its time under sustained ingestion) when nobody watches anything.
        """
        headers = _headers.decode(raw)
        if not headers:
            return True
        # Only the usual message, the next ids in order: one that skips ids (another
        # process's, late; one a fan-out outage lost) goes the full way, which reads the
        # missing events first, lest a change of watches among them be missed for good.
        if headers[0].id != (self._evaluated or 0) + 1:
            return False
        if any(header.kind == "watches" for header in headers):
            return False
        self._evaluated = headers[-1].id
        return True

    async def _catch_up(self) -> None:
        async for event in stored_events(self.reader, self._evaluated or 0, None):
            await self._evaluate(event)

    async def _evaluate(self, event: StoredEvent) -> None:
        """Look at one committed event."""
        try:
            if self.handle(event):
                await self.reload()
        except Exception:  # one odd event must not stop the watches
            log.exception("watch evaluation failed for event %s", event.id)
        self._evaluated = event.id

    async def reload(self) -> None:
        """Read every watch and the scopes of the projects they watch."""
        self.watches = await store.all_watches(self.reader)
        self.by_experiment, self.by_project = {}, {}
        for watch in self.watches:
            if watch.experiment_id is not None:
                self.by_experiment.setdefault(watch.experiment_id, []).append(watch)
            elif watch.project_id is not None:
                self.by_project.setdefault(watch.project_id, []).append(watch)
        # Runs still at the step last seen keep what was learnt of them (when they reached
        # it); the rest start from the table, with the rate their stored row last showed.
        # Runs no watch covered were not followed, so what was kept of them can be old: a
        # new watch on them must not start from a step time long past (a false "stalled").
        runs: dict[int, Run] = {}
        for row in await store.running_experiments(self.reader):
            known = self.runs.get(row.id)
            runs[row.id] = (
                known
                if known is not None and known.step == row.step
                else Run(
                    row.name,
                    row.poster_id,
                    row.repo_key,
                    row.subdir,
                    row.step,
                    row.updated_at,
                    row.steps_per_s,
                )
            )
        self.runs = runs
        self._seen.clear()
        self.scopes = {}
        for project_id in self.by_project:
            scope = await repository.project_scope_any(self.reader, project_id)
            if scope is not None:
                self.scopes[project_id] = scope

    # ------------------------------------------------------------ events

    def _candidates(self, experiment_id: int, event: StoredEvent | Run) -> list[WatchRecord]:
        found = list(self.by_experiment.get(experiment_id, ()))
        for project_id, watches in self.by_project.items():
            scope = self.scopes.get(project_id)
            if scope is None or not scope.shows(event.repo_key, event.subdir, event.poster_id):
                continue
            found.extend(w for w in watches if w.user_id in scope.members)
        return found

    def handle(self, event: StoredEvent) -> bool:
        """Evaluate the watches one committed event may meet; True when they must be reloaded.

        Synchronous, so that with no watch to match an event costs no task switch.
        """
        kind = event.kind
        if kind == "watches":
            return True
        if kind == "project":
            # Every run that starts or ends in a project changes its counts: follow its
            # membership in place rather than reload every watch and running run (~0.2 s
            # with 10,000 running).
            scope = self.scopes.get(event.project_id or 0)
            if scope is not None:
                self.scopes[scope.id] = scope.joined(event.member_ids, event.id)
                return False
            return event.project_id in self.by_project
        if kind == "project_deleted":
            return event.project_id in self.by_project
        if not self.watches:
            return False
        if kind == "experiment":
            progress = _progress.decode(event.data)
            # Followed whether a watch covers it now or not: one may cover it later (its
            # poster rejoins the project), and from a step time frozen meanwhile it read as
            # stalled, even once it had ended.
            self._follow(event, progress)
            watches = self._candidates(progress.id, event)
            if watches:
                self._experiment(event, _row.decode(event.data), watches)
        elif kind == "points":
            experiment_id = _points_id.decode(event.data).experiment_id
            watches = self._candidates(experiment_id, event)
            if watches:
                self._points(_points.decode(event.data), watches)
        elif kind == "deleted" and not moved_to(event)[0]:  # a run that moved goes on
            self.runs.pop(_deleted.decode(event.data).experiment_id, None)
        return False

    def _follow(self, event: StoredEvent, row: _Progress) -> None:
        """Keep the running run's step and when it reached it (an ended run goes)."""
        if row.status != "running":
            self.runs.pop(row.id, None)
            return
        run = self.runs.get(row.id)
        if run is None:
            run = self.runs[row.id] = Run(
                row.name, event.poster_id, event.repo_key, event.subdir, row.step, self.clock()
            )
        elif row.step != run.step:
            run.step, run.last_step_at = row.step, self.clock()
        run.name, run.steps_per_s = row.name, row.steps_per_s

    def _experiment(
        self, event: StoredEvent, row: ExperimentRow, watches: list[WatchRecord]
    ) -> None:
        # A run stopped by the sweeper or marked failed by hand brings no new value: its
        # metrics are the ones it was last seen with (a watch made since fired on them).
        # (Marked by hand, it ended when it was last updated; a post since, DVC's `done`
        # say, moved its update on and may bring values.)
        by_hand = (
            row.status == "failed"
            and bool(row.errors)
            and row.errors[-1].cls == MARKED_FAILED
            and row.finished_at == row.updated_at
        )
        new_values = row.status != "stopped" and not by_hand
        for watch in watches:
            condition = watch.condition
            if condition.kind != "status" and not new_values:
                continue
            if condition.kind == "status":
                wanted = condition.statuses or ["failed"]
                if row.status in wanted:
                    at = f" at step {row.step}" if row.step is not None else ""
                    # Each end has its own time (a re-sent done keeps it): a resumed run
                    # that fails again fires again, a duplicate never does.
                    ended = row.finished_at.timestamp() if row.finished_at else row.step
                    self._fire(watch, row.id, f"{row.status}@{ended}", f"{row.status}{at}")
            elif condition.kind == "threshold" and condition.metric in row.metrics:
                value = row.metrics[condition.metric]
                if condition.crossed(value):
                    self._fire(watch, row.id, "", _crossed(condition.metric, value, row.step))
            elif condition.kind == "nonfinite":
                bad = [
                    (name, value)
                    for name, value in row.metrics.items()
                    if condition.metric in (None, name) and _nonfinite(value)
                ]
                if bad:
                    what = _bad(bad[0][0], bad[0][1], row.step, len(bad) - 1)
                    self._fire(watch, row.id, "nonfinite", what)

    def _points(self, points: PointsEvent, watches: list[WatchRecord]) -> None:
        run = self.runs.get(points.experiment_id)
        if run is not None:
            top = max((rows[-1][0] for rows in points.series.values() if rows), default=None)
            if top is not None and (run.step is None or top > run.step):
                run.step, run.last_step_at = top, self.clock()
        for watch in watches:
            condition = watch.condition
            for name, rows in points.series.items():
                if condition.metric not in (None, name):
                    continue
                if condition.kind == "threshold":
                    hit = next(((s, v) for s, v in rows if condition.crossed(v)), None)
                    if hit is not None:
                        self._fire(watch, points.experiment_id, "", _crossed(name, hit[1], hit[0]))
                elif condition.kind == "nonfinite":
                    hit = next(((s, v) for s, v in rows if _nonfinite(v)), None)
                    if hit is not None:
                        what = _bad(name, hit[1], hit[0])
                        self._fire(watch, points.experiment_id, "nonfinite", what)

    # ------------------------------------------------------------ stalled runs

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_interval)
            try:
                self.check_stalled(self.clock())
            except Exception:
                log.exception("stalled-run check failed")

    def check_stalled(self, now: float) -> None:
        """Fire the stalled watches of runs silent for their factor times their step interval."""
        stalled_watches = [w for w in self.watches if w.condition.kind == "stalled"]
        if not stalled_watches:
            return
        for experiment_id, run in self.runs.items():
            if not run.steps_per_s:
                continue
            silent = now - run.last_step_at
            for watch in self._candidates(experiment_id, run):
                if watch.condition.kind != "stalled":
                    continue
                factor = watch.condition.factor or DEFAULT_STALL_FACTOR
                if silent > max(factor / run.steps_per_s, MIN_STALL_SECONDS):
                    what = (
                        f"stalled at step {run.step}: no new step for {silent:.0f} s"
                        f" (usually {1 / run.steps_per_s:.2g} s)"
                    )
                    self._fire(watch, experiment_id, f"stalled@{run.step}", what)

    # ------------------------------------------------------------ firing

    def _fire(self, watch: WatchRecord, experiment_id: int, dedupe: str, what: str) -> None:
        if (watch.id, experiment_id, dedupe) in self._seen:
            return
        # A project watch over many runs that all go wrong at once must not become a storm
        # of bells and webhook posts: at most MAX_PER_MINUTE firings a watch a minute.
        now = self.clock()
        recent = self._recent.setdefault(watch.id, deque(maxlen=MAX_PER_MINUTE))
        if len(recent) == MAX_PER_MINUTE and now - recent[0] < 60:
            return
        try:
            self._queue.put_nowait(Firing(watch.id, experiment_id, dedupe, printable(what)))
        except asyncio.QueueFull:
            log.warning("too many alerts waiting; dropped one of watch %s", watch.id)
            return
        recent.append(now)

    async def _deliver(self, alert: AlertInfo, url: str) -> None:
        """Post one alert, at most MAX_DELIVERIES at a time (a slow receiver holds a slot)."""
        if self._client is None:
            self._client = webhooks.new_client()
        async with self._deliveries:
            await webhooks.deliver(
                self._client,
                self.writer,
                alert,
                url,
                allow_private=self.settings.webhook_allow_private,
                retry_delay=self.settings.webhook_retry_delay,
                clock=self.clock,
            )

    async def _fire_forever(self) -> None:
        seen = self._seen
        while True:
            firing = await self._queue.get()
            key = (firing.watch_id, firing.experiment_id, firing.dedupe)
            if key in seen:  # recorded already (the table would ignore it too)
                continue
            try:
                fired = await self.writer.submit(fire_job(firing, self.clock()))
            except Exception:
                log.exception("could not record an alert")
                continue
            if fired is not None:
                metrics.ALERTS.inc()
            if len(seen) > 100_000:
                seen.clear()
            seen.add(key)
            if fired is None or not fired[1]:
                continue
            alert, url = fired
            task = asyncio.create_task(self._deliver(alert, url))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def _nonfinite(value: object) -> bool:
    number = parse_number(value)
    return number is not None and not math.isfinite(number)


def _crossed(metric: str | None, value: object, step: int | None) -> str:
    at = f" at step {step}" if step is not None else ""
    return f"{metric} = {_text(value)}{at}"


def _bad(metric: str, value: object, step: int | None, others: int = 0) -> str:
    at = f" at step {step}" if step is not None else ""
    more = f" (and {others} more)" if others else ""
    return f"{metric} is {_text(value)}{at}{more}"


def _text(value: object) -> str:
    number = parse_number(value)
    return str(value) if number is None else f"{number:.6g}"

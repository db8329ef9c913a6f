"""Fan-out of committed events through Litestar's channels, and the per-client SSE stream.

Every event is stored first (its id comes from the append-only ``events`` table), then
published on one channel. Each stream client filters what it may see, replays what it
missed from the table when it comes back with ``Last-Event-ID``, and is told to ``reset``
when it fell further behind than the table or its own bounded backlog reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import msgspec
from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEventMessage

from backend import metrics
from backend.db import repository
from backend.db.connection import Reader, database_errors, our_mistake
from backend.db.events import REPLACED
from backend.db.repository import ProjectScope, StoredEvent
from backend.services.errors import RateLimited
from backend.services.events import CREDENTIALS
from shared.api import ProjectRow
from shared.repo_url import InvalidRepoUrl, repo_key

CHANNEL = "livestudio-events"
log = logging.getLogger(__name__)
REPLAY_PAGE = 1_000
REPLAY_AT_MOST = 20_000
"""Events a reconnecting stream is replayed at most; further behind, it is told to
``reset`` (refetch), which costs less than reading them all (``Last-Event-ID: 0`` read
the whole table, 200,000 events by default, for each such request)."""
EXPERIMENT_KINDS = frozenset({"experiment", "points", "deleted"})

_encode = msgspec.msgpack.encode
_decoder = msgspec.msgpack.Decoder(list[StoredEvent])


CACHE_AT_MOST = 16_384
"""Bigger messages and events are kept in the caches below only a couple at a time."""


def _decode(raw: bytes) -> tuple[StoredEvent, ...]:
    return tuple(_decoder.decode(raw))


_decode_small = functools.lru_cache(maxsize=256)(_decode)
# A big message (a slice of plot rows, a run's whole history) reaches every subscriber
# at about the same time: the newest two are enough, and 256 of them could hold
# gigabytes (a client decides how big its posts are).
_decode_big = functools.lru_cache(maxsize=2)(_decode)


def decode_message(raw: bytes) -> tuple[StoredEvent, ...]:
    """The events of one channel message, decoded once for all the stream clients.

    Every subscriber receives the same bytes object, whose hash Python keeps, so the
    second and later lookups cost no more than a dictionary hit.
    """
    return _decode_small(raw) if len(raw) <= CACHE_AT_MOST else _decode_big(raw)


_project_decoder = msgspec.json.Decoder(ProjectRow)


class Broadcaster:
    """Publishes committed events to every process subscribed to the channel."""

    def __init__(self, channels: ChannelsPlugin) -> None:
        self.channels = channels

    def publish(self, events: list[StoredEvent]) -> None:
        """Called by the writer after each commit with its events, in id order.

        One channel message per commit, not per event: under load a commit carries many
        events, and each message costs every process a trip through the channel backend.
        """
        self.channels.publish(_encode(events), CHANNEL)


OTHERS_EVERY = 1.0
"""How often a server looks for events another program committed (seconds)."""
CATCH_UP = "catch-up"


async def follow_other_writers(db: Reader, streams: Streams) -> None:
    """Have every stream read the table when an event went unpublished.

    The CLI (``project add``, ``user lock``, ``token create``…) commits events nobody
    publishes, and streams found them only at their next heartbeat (15 s; never, in a busy
    stream whose later events were all the server's own). Once a second, each stream is
    told the newest id read a second before: one that has not seen that far missed
    something and reads the table; the others do nothing. (Told the id read just now, most
    streams of a busy server were behind it by the events still on their way through
    Redis, and read the table for nothing: a query per stream each second.)
    """
    seen: int | None = None  # (read at once: what is committed later is someone's news)
    pending = 0
    failing = False
    while True:
        if seen is not None:
            await asyncio.sleep(OTHERS_EVERY)
        try:
            _, newest = await repository.event_id_range(db)
        except Exception as exc:
            # The database is away (the heartbeats catch up later); a bug of ours is
            # logged in full, once, and the task goes on.
            if not failing:
                if isinstance(exc, database_errors()) and not our_mistake(exc):
                    log.warning("looking for other programs' events failed: %s", exc)
                else:
                    log.exception("looking for other programs' events failed")
            failing = True
            await asyncio.sleep(OTHERS_EVERY)
            continue
        failing = False
        if seen is None:
            seen = newest
        elif pending > seen:
            streams.catch_up_all(pending)
            seen = pending
        pending = newest


_END = StoredEvent(kind="end", data=b"", id=-1)
"""Put in a stream's queue to end it (the server is shutting down)."""


MAX_STREAMS_PER_USER = 64
"""Event streams one user may hold open on one server process (a TUI holds two)."""


class Slot:
    """A user's place among their open streams, taken before the answer starts."""

    __slots__ = ("_held", "_streams", "user_id")

    def __init__(self, streams: Streams, user_id: int) -> None:
        self._streams = streams
        self.user_id = user_id
        self._held = True

    def release(self) -> None:
        """Give the place back (once, however often called)."""
        if self._held:
            self._held = False
            self._streams._release(self.user_id)


class Streams:
    """Every event stream open in this process, so that shutting down ends them at once.

    Without this a server stopping waits for its open streams (which never end on their
    own) until uvicorn's graceful-shutdown timeout.
    """

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[StoredEvent | None]] = set()
        self._per_user: Counter[int] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ending = False

    def add(self, queue: asyncio.Queue[StoredEvent | None]) -> None:
        """A stream opened."""
        self._loop = asyncio.get_running_loop()
        self._queues.add(queue)
        if self.ending:
            queue.put_nowait(_END)

    def discard(self, queue: asyncio.Queue[StoredEvent | None]) -> None:
        """A stream closed."""
        self._queues.discard(queue)

    def reserve(self, user_id: int) -> Slot:
        """Take one of the user's ``MAX_STREAMS_PER_USER`` places; ``RateLimited`` when none.

        Checked and taken in one step, before anything awaits: requests arriving together
        cannot all pass the check first.
        """
        if self._per_user[user_id] >= MAX_STREAMS_PER_USER:
            raise RateLimited(
                f"You have {MAX_STREAMS_PER_USER} event streams open already (a TUI holds"
                " two); close some before opening more.",
                retry_after=15,
            )
        self._per_user[user_id] += 1
        return Slot(self, user_id)

    def _release(self, user_id: int) -> None:
        self._per_user[user_id] -= 1
        if self._per_user[user_id] <= 0:
            del self._per_user[user_id]

    def catch_up_all(self, newest: int) -> None:
        """Tell every stream the newest stored event: one that has not seen it reads the
        table (another program committed events nobody published)."""
        marker = StoredEvent(kind=CATCH_UP, data=b"", id=newest)
        for queue in self._queues:
            queue.put_nowait(marker)

    def end_all(self) -> None:
        """End every stream (on the event loop)."""
        self.ending = True
        for queue in self._queues:
            queue.put_nowait(_END)

    def end_all_threadsafe(self) -> None:
        """End every stream, from a signal handler or another thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.end_all)
        else:
            self.ending = True


def _member_since(scope: ProjectScope, user_id: int) -> int | None:
    return scope.members.get(user_id)


class _Moved(msgspec.Struct):
    moved_to: str | None = None


_moved = msgspec.json.Decoder(_Moved)


def moved_to(event: StoredEvent) -> tuple[bool, str | None]:
    """Whether a ``deleted`` event is a run moving to another subdir, and which."""
    if event.kind != "deleted" or b'"moved_to"' not in event.data:
        return False, None
    return True, _moved.decode(event.data).moved_to


def _still_shown(scopes: Iterable[ProjectScope], event: StoredEvent) -> bool:
    """A run that moved (``moved_to``) and that one of ``scopes`` shows where it is now."""
    moved, subdir = moved_to(event)
    return moved and any(
        scope.shows(event.repo_key, subdir, event.poster_id, event.id) for scope in scopes
    )


@dataclass
class ProjectFilter:
    """What one project's stream shows to one user, as membership was at each event.

    Membership follows ``project`` events. An experiment event shows only when both the
    user and its poster had joined before it, so replaying old events (``Last-Event-ID``)
    never reveals what happened before someone's consent. Once the user is no longer a
    member, the stream shows them nothing more but the ``project_deleted`` that says so.
    """

    user_id: int
    scope: ProjectScope
    revoked: bool = False

    def accepts(self, event: StoredEvent) -> bool:
        """Whether the subscriber may see this event."""
        if event.project_id == self.scope.id and event.kind == "project_deleted":
            if self.user_id not in event.member_ids or self.revoked:
                return False
            self.revoked = True
            return True
        if event.kind == "project":
            if event.project_id != self.scope.id:
                return False
            # Without the user in it, the scope shows them nothing (see below); when they
            # were removed, the project_deleted that tells them follows in the same commit.
            self.scope = self.scope.joined(event.member_ids, event.id)
            if self.user_id not in event.member_ids:
                return False
            self.revoked = False
            return True
        if event.kind == "baseline":  # the user's own, of this project
            return (
                not self.revoked
                and event.project_id == self.scope.id
                and self.user_id in event.member_ids
            )
        if self.revoked or event.kind not in EXPERIMENT_KINDS:
            return False
        since = _member_since(self.scope, self.user_id)
        return (
            since is not None
            and since < event.id
            and self.scope.shows(event.repo_key, event.subdir, event.poster_id, event.id)
            and not _still_shown((self.scope,), event)
        )


@dataclass
class UserFilter:
    """What the all-projects stream of one user shows; projects join as they appear.

    ``scopes`` are the user's projects as of event ``as_of``. A replay (``Last-Event-ID``)
    goes through older ``project`` events too: those of a project the user is no longer a
    member of are its history, which is not theirs to read any more.
    """

    user_id: int
    scopes: dict[int, ProjectScope] = field(default_factory=dict)
    as_of: int = 0
    invitations: bool = True
    """Whether invitation events show: only to a login session, as ``GET /api/invitations``
    (an access token, a CI job's, learns nothing of them)."""
    current: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        self.current = frozenset(self.scopes)

    def accepts(self, event: StoredEvent) -> bool:
        """Whether the subscriber may see this event."""
        history = event.id <= self.as_of
        if event.kind == "project" and history and event.project_id not in self.current:
            return False  # (a ``project_deleted`` still tells a returning client it is gone)
        if event.kind == "project_deleted":
            if self.user_id not in event.member_ids:
                return False
            self.scopes.pop(event.project_id or 0, None)
            return True
        if event.kind in ("invitation", "invitation_closed"):
            return self.invitations and self.user_id in event.member_ids
        if event.kind == "alert":
            return self.user_id in event.member_ids
        if event.kind == "project":
            if self.user_id not in event.member_ids:
                self.scopes.pop(event.project_id or 0, None)
                return False
            known = self.scopes.get(event.project_id or 0)
            if known is not None:
                self.scopes[known.id] = known.joined(event.member_ids, event.id)
            else:
                row = _project_decoder.decode(event.data)
                with contextlib.suppress(InvalidRepoUrl):
                    self.scopes[row.id] = ProjectScope(
                        row.id, repo_key(row.repo_url), row.subdir, {}
                    ).joined(event.member_ids, event.id)
            return True
        if event.kind not in EXPERIMENT_KINDS:
            return False
        for scope in self.scopes.values():
            since = _member_since(scope, self.user_id)
            if (
                since is not None
                and since < event.id
                and scope.shows(event.repo_key, event.subdir, event.poster_id, event.id)
            ):
                # Unless it moved, and one of the user's projects shows it still.
                return event.kind != "deleted" or not _still_shown(self._joined(event), event)
        return False

    def _joined(self, event: StoredEvent) -> list[ProjectScope]:
        """The user's projects they were in at ``event``."""
        return [
            scope
            for scope in self.scopes.values()
            if (since := _member_since(scope, self.user_id)) is not None and since < event.id
        ]


EventFilter = ProjectFilter | UserFilter


async def stored_events(db: Reader, after: int, before: int | None) -> AsyncIterator[StoredEvent]:
    """Stored events with ``after < id < before`` (no upper bound for None), oldest first."""
    while True:
        page = await repository.events_after(db, after, REPLAY_PAGE)
        for event in page:
            if before is not None and event.id >= before:
                return
            after = event.id
            yield event
        if len(page) < REPLAY_PAGE:
            return


async def shown_events(
    db: Reader, after: int, accepts: Callable[[StoredEvent], bool]
) -> AsyncIterator[tuple[StoredEvent, bool]]:
    """Every stored event after ``after``, oldest first, with whether ``accepts`` shows it
    (asked in order); the data of runs' events is read only for those it shows: a replay
    read every user's megabytes of points to drop them, and a user replaying in a loop
    slowed everyone's requests to seconds.

    Runs' events are asked about in batches before their data is read, which is safe
    because ``accepts`` changes nothing for them; any other event (a membership change,
    which it does change) is asked about only as it is yielded, so a read that fails
    leaves the filter as it was after the last event yielded.
    """
    lazy = repository.LAZY_KINDS
    while True:
        page = await repository.events_after(db, after, REPLAY_PAGE, lazy=True)
        start = 0
        while start < len(page):
            event = page[start]
            if event.kind not in lazy:
                after = event.id
                start += 1
                yield event, accepts(event)
                continue
            end = start
            while end < len(page) and page[end].kind in lazy:
                end += 1
            run = [(e, accepts(e)) for e in page[start:end]]
            wanted = [e.id for e, ok in run if ok]
            data = await repository.event_data(db, wanted) if wanted else {}
            for event, _ in run:
                after = event.id
                if event.id in data:
                    yield msgspec.structs.replace(event, data=data[event.id]), True
                else:  # not shown, or pruned meanwhile: as if gone
                    yield event, False
            start = end
        if len(page) < REPLAY_PAGE:
            return


async def in_order(db: Reader, last: int, event: StoredEvent) -> AsyncIterator[StoredEvent]:
    """``event`` as a consumer that has seen up to id ``last`` must take it: nothing when
    seen already, else after every stored event between ``last`` and it.

    Ids are taken in commit order, so every event below ``event`` is committed already:
    one another process published later, or that a fan-out outage lost, is read from the
    table, in order, first.
    """
    if event.id <= last:
        return
    if event.id > last + 1:
        async for missed in stored_events(db, last, event.id):
            yield missed
    yield event


_SEP = b"\r\n"  # what Litestar's ServerSentEvent separates lines with
CONNECTED = b": connected" + _SEP * 2
KEEP_ALIVE = b": keep-alive" + _SEP * 2
BATCH = 64
"""Events written to a stream in one piece at most: those waiting are sent together."""


def _message(event: StoredEvent) -> bytes:
    """An event as server-sent-event bytes, encoded once for all the streams it goes to
    (every subscriber gets the same decoded events, see ``decode_message``); big ones
    (a slice of plot rows) are not kept, so the cache stays a few megabytes at most."""
    if len(event.data) > CACHE_AT_MOST:
        return _encoded(event)
    return _encoded_cached(event)


def _encoded(event: StoredEvent) -> bytes:
    data = event.data
    if b"\n" in data or b"\r" in data:  # never in compact JSON; split as the SSE spec says
        return ServerSentEventMessage(data=data.decode(), event=event.kind, id=event.id).encode()
    return b"id: %d%sevent: %s%sdata: %s%s%s" % (
        event.id,
        _SEP,
        event.kind.encode(),
        _SEP,
        data,
        _SEP,
        _SEP,
    )


_encoded_cached = functools.lru_cache(maxsize=512)(_encoded)


def _gone(project_id: int, last_id: int) -> bytes:
    data = msgspec.json.encode({"project_id": project_id})
    return _encoded(StoredEvent(kind="project_deleted", data=data, id=last_id))


def _reset(last_id: int) -> bytes:
    return _encoded(StoredEvent(kind="reset", data=b"{}", id=last_id))


_SEEN = StoredEvent(kind="seen", data=b"", id=-3)
"""A ``CATCH_UP`` a stream is past already: nothing to do."""
_BEAT = StoredEvent(kind="beat", data=b"", id=-2)
"""Put in a stream's queue when it has written nothing for a heartbeat (or for a
``CATCH_UP`` it is behind): it reads the table for what it missed."""


class _Heartbeat:
    """Wakes a stream that has written nothing for ``every`` seconds.

    One timer per stream, moved only when it fires (not a timeout per event): a stream
    whose events are all filtered out on a busy server still gets its keep-alive.
    """

    def __init__(self, queue: asyncio.Queue[StoredEvent | None], every: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = queue
        self._every = every
        self.written = self._loop.time()
        self._timer = self._loop.call_later(every, self._check)

    def _check(self) -> None:
        quiet = self._loop.time() - self.written
        if quiet >= self._every * 0.99:
            self._queue.put_nowait(_BEAT)
            self.written = self._loop.time()  # the beat itself writes
            quiet = 0.0
        self._timer = self._loop.call_later(self._every - quiet, self._check)

    def cancel(self) -> None:
        self._timer.cancel()


async def stream(
    *,
    db: Reader,
    channels: ChannelsPlugin,
    event_filter: EventFilter,
    last_event_id: int | None,
    heartbeat: float,
    backlog: int,
    streams: Streams | None = None,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
    slot: Slot | None = None,
    refilter: Callable[[int], Awaitable[EventFilter | None]] | None = None,
) -> AsyncIterator[bytes]:
    """The event stream of one client, from ``last_event_id`` (or now) on, until shutdown.

    It yields server-sent-event bytes: the events waiting when the client is written to
    go out as one piece (one write instead of one per event under load).

    ``still_allowed`` checks the client's credential again: when one of the user's
    sessions or tokens is revoked (a ``credentials`` event, in commit order, so nothing
    committed after the revocation is sent), when the stream starts (a revocation between
    the request's check and the subscription), and once a heartbeat, busy or quiet (a
    session expiring, a change made by the CLI). The stream ends when it fails; the client
    reconnecting is refused. ``slot`` (``Streams.reserve``) is given back when it ends.

    ``refilter`` reads the user's membership again once the stream knows the newest event
    id it starts from, and returns the filter to use (None: the user may no longer read):
    membership read before that would miss a removal committed in between, whose event
    the stream then never sees.
    """
    queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue()
    user_id = event_filter.user_id

    async def revoked(event: StoredEvent) -> bool:
        """Whether the stream must end here: its credential was revoked, or the database
        was replaced. (Before it reads the table past what it has sent, a stream looks for
        a ``REPLACED`` marker ahead and ends there: the copied events before the marker are
        another database's, filtered by this one's access. Its client comes back, is told
        to reset, and its access is worked out again from what the database now holds.)"""
        if event.kind == REPLACED:
            return True
        return (
            event.kind == CREDENTIALS
            and user_id in event.member_ids
            and still_allowed is not None
            and not await still_allowed()
        )

    async def pump(subscriber: object) -> None:
        async for raw in subscriber.iter_events():  # type: ignore[attr-defined]
            for event in decode_message(raw):
                if queue.qsize() >= backlog:
                    # The client reads slower than we produce: drop its backlog and tell
                    # it to refetch, rather than slow ingestion or grow without bound.
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait(None)
                    break
                queue.put_nowait(event)

    # Subscribe before reading the table, so nothing committed in between is missed;
    # anything seen twice is dropped by id below.
    async with channels.start_subscription([CHANNEL]) as subscriber:
        pump_task = asyncio.create_task(pump(subscriber))
        metrics.STREAM_SUBSCRIBERS.inc()
        if streams is not None:
            streams.add(queue)
        beat: _Heartbeat | None = None
        try:
            out: list[bytes] = []
            if still_allowed is not None and not await still_allowed():
                return
            checked = asyncio.get_running_loop().time()
            try:
                oldest, newest = await repository.event_id_range(db)
                if refilter is not None:
                    fresh = await refilter(newest)
                    if fresh is None:  # removed meanwhile: say so, as the removal's event would
                        if isinstance(event_filter, ProjectFilter):
                            yield _gone(event_filter.scope.id, newest)
                        return
                    event_filter = fresh
                if last_event_id is None:
                    last = newest
                elif (
                    last_event_id < oldest - 1
                    or last_event_id > newest
                    or newest - last_event_id > REPLAY_AT_MOST
                ):
                    last = newest
                    out.append(_reset(last))
                else:
                    last = last_event_id
                    marker = await repository.replaced_after(db, last)
                    if marker is not None:  # what came before it is another database's
                        last = marker
                        out.append(_reset(last))
                    async for event, shown in shown_events(db, last, event_filter.accepts):
                        last = event.id
                        if await revoked(event):
                            return
                        if shown:
                            out.append(_message(event))
                            if len(out) >= BATCH:
                                yield b"".join(out)
                                out.clear()
                out.append(CONNECTED)
                yield b"".join(out)
            except database_errors() as exc:
                if our_mistake(exc):
                    raise
                # The database is away (or a page of it unreadable): end the stream in one
                # log line, not a traceback; the client reconnects with Last-Event-ID.
                log.warning("stream could not start, ending it: %s", exc)
                return
            beat = _Heartbeat(queue, heartbeat)
            while True:
                item = await queue.get()
                out.clear()
                while True:
                    if item is _END:
                        if out:
                            yield b"".join(out)
                        return
                    if item is not None and item.kind == CATCH_UP:
                        # Another program committed up to item.id: read the table (as a
                        # heartbeat does) only if this stream has not seen that far.
                        item = _BEAT if item.id > last else _SEEN
                    if item is _SEEN:
                        pass
                    elif item is _BEAT:
                        # A quiet stream checks that no message was lost on the way (another
                        # process's, while Redis was away): the table has every event.
                        try:
                            if await repository.replaced_after(db, last) is not None:
                                if out:  # (what came through the channel is this one's)
                                    yield b"".join(out)
                                return  # (see ``revoked``)
                            async for event, shown in shown_events(db, last, event_filter.accepts):
                                last = event.id
                                if await revoked(event):
                                    return
                                if shown:
                                    out.append(_message(event))
                                    if len(out) >= BATCH:  # a long catch-up: in parts
                                        yield b"".join(out)
                                        out.clear()
                        except database_errors() as exc:  # the database is away: next time
                            log.warning("stream catch-up failed: %s", exc)
                        else:
                            checked = asyncio.get_running_loop().time()
                            if still_allowed is not None and not await still_allowed():
                                return
                        out.append(KEEP_ALIVE)
                    elif item is None:
                        _, last = await repository.event_id_range(db)
                        out.append(_reset(last))
                    elif item.id == last + 1:  # the usual case, without a generator per event
                        last = item.id
                        if item.kind == CREDENTIALS:
                            if await revoked(item):
                                if out:
                                    yield b"".join(out)
                                return
                        elif event_filter.accepts(item):
                            out.append(_message(item))
                    else:
                        try:
                            if await repository.replaced_after(db, last) is not None:
                                if out:  # (what came through the channel is this one's)
                                    yield b"".join(out)
                                return  # (see ``revoked``)
                            async for event in in_order(db, last, item):
                                last = event.id
                                if await revoked(event):
                                    if out:
                                        yield b"".join(out)
                                    return
                                if event_filter.accepts(event):
                                    out.append(_message(event))
                                    if len(out) >= BATCH:  # a long gap: in parts
                                        yield b"".join(out)
                                        out.clear()
                        except database_errors() as exc:
                            # Never skip over a gap: end the stream; the client reconnects
                            # with Last-Event-ID and is replayed exactly what it missed.
                            log.warning("stream gap could not be read, ending it: %s", exc)
                            if out:
                                yield b"".join(out)
                            return
                    if queue.empty() or len(out) >= BATCH:
                        break
                    item = queue.get_nowait()
                if out:
                    yield b"".join(out)
                    beat.written = asyncio.get_running_loop().time()
                # A busy stream gets no heartbeat: its credential is checked as often.
                now = asyncio.get_running_loop().time()
                if still_allowed is not None and now - checked >= heartbeat:
                    checked = now
                    if not await still_allowed():
                        return
        finally:
            if slot is not None:
                slot.release()
            if beat is not None:
                beat.cancel()
            if streams is not None:
                streams.discard(queue)
            metrics.STREAM_SUBSCRIBERS.dec()
            pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump_task

"""Stream events: the append-only table whose ids order every event stream."""

from __future__ import annotations

from typing import cast

import msgspec

from backend.db.common import NOW
from backend.db.connection import Conn, Reader, Row

REPLACED = "replaced"
"""The event ``db copy`` writes last: what a stream sent before came from the database it
replaced (a stream open then ends; one starting past it is told to ``reset``)."""


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A stream event about to be stored; the routing fields decide who may see it."""

    kind: str
    data: bytes
    repo_key: str | None = None
    subdir: str | None = None
    poster_id: int | None = None
    project_id: int | None = None
    member_ids: tuple[int, ...] = ()


class StoredEvent(NewEvent, frozen=True, kw_only=True):
    """A stored stream event with its sequence number."""

    id: int


def insert_event(conn: Conn, event: NewEvent) -> StoredEvent:
    """Append an event; its id orders the stream."""
    cur = conn.execute(
        "INSERT INTO events (created_at, kind, repo_key, subdir, poster_id, project_id,"
        " member_ids, data) VALUES (" + NOW + ", ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            event.kind,
            event.repo_key,
            event.subdir,
            event.poster_id,
            event.project_id,
            ",".join(map(str, event.member_ids)),
            event.data,
        ),
    )
    return numbered(event, int(cur.fetchone()[0]))


def numbered(event: NewEvent, event_id: int) -> StoredEvent:
    """The event as stored under ``event_id``."""
    return StoredEvent(id=event_id, **msgspec.structs.asdict(event))


_INSERT_NUMBERED = (
    "INSERT INTO events (id, created_at, kind, repo_key, subdir, poster_id, project_id,"
    " member_ids, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def last_event_id(conn: Conn) -> int:
    """The newest event's id (0 when there is none); the next event gets the one after."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


def insert_numbered_events(conn: Conn, events: list[StoredEvent], created_at: float) -> None:
    """Append events whose ids the writer assigned (SQLite: one statement for a batch).

    Only the one writer appends events, under the write lock, so numbering them from
    ``last_event_id`` gives the ids ``insert_event`` would have given.
    """
    conn.executemany(
        _INSERT_NUMBERED,
        [
            (
                e.id,
                created_at,
                e.kind,
                e.repo_key,
                e.subdir,
                e.poster_id,
                e.project_id,
                ",".join(map(str, e.member_ids)),
                e.data,
            )
            for e in events
        ],
    )


def prune_events(conn: Conn, keep: int, at_most: int) -> int:
    """Drop the oldest events beyond the newest ``keep``, at most about ``at_most`` of
    them (a transaction deleting millions would hold every request); returns how many.

    The newest event always stays: event ids are rowids, and keeping the highest one is
    what keeps them increasing.
    """
    # The bounds first, each its own query: SQLite reads MIN(id) and MAX(id) off the ends
    # of the table only one at a time, and inside the DELETE they cost a scan (~25 ms at
    # 200,000 events, where the delete itself takes 1 ms).
    (lowest,) = conn.execute("SELECT MIN(id) FROM events").fetchone()
    (highest,) = conn.execute("SELECT MAX(id) FROM events").fetchone()
    if lowest is None:
        return 0
    below = min(lowest + at_most, highest - max(1, keep) + 1)
    if below <= lowest:
        return 0
    cur = conn.execute("DELETE FROM events WHERE id < ?", (below,))
    return cast(int, cur.rowcount)


def _event_from_row(row: Row) -> StoredEvent:
    raw = row["member_ids"]
    members = tuple(int(m) for m in raw.split(",") if m) if raw else ()
    return StoredEvent(
        id=row["id"],
        kind=row["kind"],
        repo_key=row["repo_key"],
        subdir=row["subdir"],
        poster_id=row["poster_id"],
        project_id=row["project_id"],
        member_ids=members,
        data=b"" if row["data"] is None else bytes(row["data"]),
    )


LAZY_KINDS = ("experiment", "points")
"""The kinds whose data a reader can tell it wants without (their routing columns say)."""
_LAZY_DATA = f"CASE WHEN kind IN {LAZY_KINDS!r} THEN NULL ELSE data END AS data"


async def events_after(
    db: Reader, last_id: int, limit: int, *, lazy: bool = False
) -> list[StoredEvent]:
    """Stored events with an id above ``last_id``, oldest first; ``lazy``: with empty data
    for ``LAZY_KINDS`` (read it with ``event_data`` for the ones wanted)."""
    async with db.execute(
        "SELECT id, kind, repo_key, subdir, poster_id, project_id, member_ids, "
        + (_LAZY_DATA if lazy else "data")
        + " FROM events WHERE id > ? ORDER BY id LIMIT ?",
        (last_id, limit),
    ) as cur:
        return [_event_from_row(row) for row in await cur.fetchall()]


async def event_data(db: Reader, ids: list[int]) -> dict[int, bytes]:
    """The data of the stored events ``ids`` (those still kept), by id."""
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        async with db.execute(
            f"SELECT id, data FROM events WHERE id IN ({', '.join('?' * len(chunk))})", chunk
        ) as cur:
            found.update((row["id"], bytes(row["data"])) for row in await cur.fetchall())
    return found


async def replaced_after(db: Reader, last_id: int) -> int | None:
    """The id of the newest ``REPLACED`` marker above ``last_id``, if any (a range of the
    key: only the rows a stream is about to read anyway)."""
    async with db.execute(
        "SELECT MAX(id) AS marker FROM events WHERE id > ? AND kind = ?", (last_id, REPLACED)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None or row["marker"] is None else int(row["marker"])


async def event_id_range(db: Reader) -> tuple[int, int]:
    """(oldest retained id, newest id); (1, 0) when there are none yet."""
    async with db.execute("SELECT MIN(id) AS oldest, MAX(id) AS newest FROM events") as cur:
        row = await cur.fetchone()
    if row is None or row["oldest"] is None:
        return 1, 0
    return int(row["oldest"]), int(row["newest"])

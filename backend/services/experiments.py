"""Reading experiments, their series and images; deleting or failing them by hand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from backend.db import downsample, repository
from backend.db.connection import Reader
from backend.db.repository import ExperimentRecord, Principal
from backend.db.writer import WriteContext, Writer
from backend.services import access, events, ingest
from backend.services.errors import InvalidInput, NotFound
from backend.services.status import MARKED_FAILED
from shared.api import STATUSES, ExperimentDetail, ExperimentRow
from shared.live import ErrorInfo

log = logging.getLogger(__name__)
MAX_SERIES_POINTS = 100_000
MAX_AT_NAMES = 1_000
"""Series one ``at`` read looks up at most (one indexed query each)."""
_encode = msgspec.json.encode


def _not_found(experiment_id: int) -> NotFound:
    return NotFound(f"Experiment {experiment_id} does not exist or is not in any of your projects.")


async def visible(db: Reader, user: Principal, experiment_id: int) -> ExperimentRecord:
    """The experiment if the user can see it; ``NotFound`` otherwise."""
    record = await repository.experiment_visible(db, experiment_id, user.user_id)
    if record is None:
        raise _not_found(experiment_id)
    return record


async def list_rows_json(db: Reader, user: Principal, project_id: int, status: str | None) -> bytes:
    """The experiment rows of a project (optionally of one status) as a JSON array."""
    from backend.services.projects import scope_for

    if status is not None and status not in STATUSES:
        raise InvalidInput(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
    scope = await scope_for(db, user, project_id)
    return await repository.experiment_rows_json(db, scope, status)


async def detail(db: Reader, user: Principal, experiment_id: int) -> ExperimentDetail:
    """One experiment with its series names and images."""
    record = await visible(db, user, experiment_id)
    row = record.to_row()
    poster = await repository.user_by_id(db, record.poster_id)
    owners = await repository.owners_showing_async(
        db, record.repo_key, record.subdir, record.poster_id
    )
    return ExperimentDetail(
        **{f: getattr(row, f) for f in row.__struct_fields__},
        series=await repository.series_names(db, experiment_id),
        images=await repository.images_of(db, experiment_id),
        poster=poster.username if poster is not None else None,
        may_change=access.can_change_run(user, record.poster_id, owners),
    )


PAGE_POINTS = 10_000
"""Points read per query for a whole series: the read connection serves others between pages."""
CHUNK_BYTES = 64 << 10


async def series(
    db: Reader,
    writer: Writer,
    user: Principal,
    experiment_id: int,
    names: list[str] | None,
    max_points: int | None,
    with_time: bool = False,
    at: int | None = None,
) -> AsyncIterator[bytes]:
    """Points of the named series (all when none named), downsampled on request, as the
    JSON object ``{name: [[step, value], ...]}``, produced page by page.

    ``with_time``: each point is ``[step, value, arrived_at]`` (UNIX seconds), for charts
    over wall time. Permission and input are checked here, and the first chunk is made
    (so a database that fails at once is an error answer, not a cut-off body); the rest
    comes as it is read, so a million-point series costs neither the memory of a million
    Python tuples nor one long query that every other read waits behind.
    """
    await visible(db, user, experiment_id)
    if max_points is not None and not 2 <= max_points <= MAX_SERIES_POINTS:
        raise InvalidInput(f"max_points must be between 2 and {MAX_SERIES_POINTS}.")
    if at is not None and max_points is not None:
        raise InvalidInput("Give max_points or at, not both.")
    # Recent points may still wait in the log; file them so the points table is exact.
    await writer.submit(ingest.file_points_job)
    wanted = (
        list(dict.fromkeys(names)) if names else await repository.series_names(db, experiment_id)
    )
    chunks = (
        _series_json(db, experiment_id, wanted, max_points, with_time)
        if at is None
        else _points_at(db, experiment_id, wanted, at, with_time)
    )
    first = await anext(chunks)
    return _logged(experiment_id, first, chunks)


async def _logged(
    experiment_id: int, first: bytes, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """The chunks; a failure once the answer has begun can only cut the body short (the
    client sees an incomplete response), so it is said in one line of the log."""
    yield first
    try:
        async for chunk in chunks:
            yield chunk
    except Exception as exc:
        log.warning("reading the series of experiment %s stopped: %s", experiment_id, exc)
        raise


async def _points_at(
    db: Reader, experiment_id: int, names: list[str], step: int, with_time: bool
) -> AsyncIterator[bytes]:
    """``{name: [point]}``: each series' point at ``step`` or the last before it (a chart's
    step cursor reads exact values so, whatever its downsampled lines hold)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for name in names[:MAX_AT_NAMES]:
        series = await repository.find_series(db, experiment_id, name)
        found[name] = (
            [] if series is None else await repository.point_at(db, series, step, with_time)
        )
    yield _encode(found)


async def _series_json(
    db: Reader, experiment_id: int, names: list[str], max_points: int | None, with_time: bool
) -> AsyncIterator[bytes]:
    buffer = bytearray(b"{")
    for index, name in enumerate(names):
        buffer += b"," if index else b""
        buffer += _encode(name) + b":["
        first = True
        async for points in _points(db, experiment_id, name, max_points, with_time):
            if not first:
                buffer += b","
            buffer += points
            first = False
            if len(buffer) >= CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
        buffer += b"]"
    buffer += b"}"
    yield bytes(buffer)


async def _points(
    db: Reader, experiment_id: int, name: str, max_points: int | None, with_time: bool
) -> AsyncIterator[bytes]:
    """The series' points as JSON array items, in pages (one page when downsampled).

    Reads are shielded: a client that goes away cancels the stream between reads, never
    in the middle of one (PostgreSQL's pool would throw the connection away). Only bytes
    are kept across a ``yield``, so a stalled client holds one encoded page, not tuples.
    """
    if max_points is not None:
        points = await asyncio.shield(_downsampled(db, experiment_id, name, max_points, with_time))
        if points is not None:
            yield _encode(points)[1:-1]
            return
    series = await asyncio.shield(repository.find_series(db, experiment_id, name))
    if series is None:
        return
    after = -1
    while True:
        page = await asyncio.shield(
            repository.series_page(db, series, after, PAGE_POINTS, with_time)
        )
        full = len(page) == PAGE_POINTS
        after = page[-1][0] if page else after
        encoded = _encode(page)[1:-1]
        del page
        if encoded:
            yield encoded
        if not full:
            return


async def _downsampled(
    db: Reader, experiment_id: int, name: str, max_points: int, with_time: bool
) -> list[tuple[Any, ...]] | None:
    """At most ``max_points`` points spelled for JSON, or None when the series fits."""
    points = await downsample.downsampled(db, experiment_id, name, max_points)
    if points is None:
        return None
    wire = repository.wire_points(points)
    if not with_time:
        return wire
    times = await repository.arrival_times(db, experiment_id, name, [p[0] for p in wire])
    return [(step, value, times.get(step)) for step, value in wire]


async def image(db: Reader, user: Principal, experiment_id: int, path: str) -> bytes:
    """The PNG stored under a path."""
    await visible(db, user, experiment_id)
    png = await repository.image_png(db, experiment_id, path)
    if png is None:
        raise NotFound(f"Experiment {experiment_id} has no image {path!r}.")
    return png


def _changeable(ctx: WriteContext, user: Principal, experiment_id: int) -> ExperimentRecord:
    """The experiment, if the user sees it and is its poster or a project owner showing it."""
    record = repository.experiment_visible_sync(ctx.conn, experiment_id, user.user_id)
    if record is None:
        raise _not_found(experiment_id)
    access.may_change_run(
        user,
        record.poster_id,
        repository.owners_showing(ctx.conn, record.repo_key, record.subdir, record.poster_id),
    )
    return record


DELETE_AT_MOST = 20_000
"""Points deleted per transaction when deleting an experiment (about 40 ms here)."""


async def delete(writer: Writer, user: Principal, experiment_id: int) -> None:
    """Delete an experiment the user may change: its points a part at a time (other
    requests go on in between), then the rest at once."""
    while await writer.submit(delete_points_job(user, experiment_id)) >= DELETE_AT_MOST:
        pass
    await writer.submit(delete_job(user, experiment_id))


def delete_points_job(
    user: Principal, experiment_id: int, at_most: int = DELETE_AT_MOST
) -> Callable[[WriteContext], int]:
    """Delete up to ``at_most`` points of an experiment the user may change; how many."""

    def job(ctx: WriteContext) -> int:
        _changeable(ctx, user, experiment_id)
        return repository.delete_some_points(ctx.conn, experiment_id, at_most)

    return job


def delete_job(user: Principal, experiment_id: int) -> Callable[[WriteContext], None]:
    """Delete an experiment the user can see."""

    def job(ctx: WriteContext) -> None:
        record = _changeable(ctx, user, experiment_id)
        projects = repository.project_ids_showing(
            ctx.conn, record.repo_key, record.subdir, record.poster_id
        )
        repository.delete_experiment(ctx.conn, experiment_id)
        events.experiment_deleted(ctx, record)
        events.projects_changed(ctx, projects)

    return job


def mark_failed_job(
    user: Principal, experiment_id: int, reason: str, now: Callable[[], float]
) -> Callable[[WriteContext], ExperimentRow]:
    """Mark an experiment Failed by hand, with the reason as its error."""

    def job(ctx: WriteContext) -> ExperimentRow:
        record = _changeable(ctx, user, experiment_id)
        was = record.status
        record.status = "failed"
        record.finished_at = record.updated_at = now()
        record.done_step = record.step if record.step is not None else -1
        record.errors = [*record.errors, ErrorInfo(cls=MARKED_FAILED, text=reason)]
        repository.update_experiment(ctx.conn, record)
        events.experiment_changed(ctx, record, counts_changed=was != "failed")
        return record.to_row()

    return job

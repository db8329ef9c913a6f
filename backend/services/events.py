"""Builders of the stream events every write emits (SPEC §5.4)."""

from __future__ import annotations

import msgspec

from backend.db import repository
from backend.db.repository import ExperimentRecord
from backend.db.writer import WriteContext
from shared.api import Invitation, PointsEvent

_encode = msgspec.json.encode


def experiment_changed(
    ctx: WriteContext, record: ExperimentRecord, *, counts_changed: bool
) -> None:
    """Emit the full row; when it was created, deleted or changed status, the project counts."""
    # Project rows first: a subscriber learns of a new project before its first row.
    if counts_changed:
        projects_changed(
            ctx,
            repository.project_ids_showing(
                ctx.conn, record.repo_key, record.subdir, record.poster_id
            ),
        )
    ctx.emit(
        repository.NewEvent(
            kind="experiment",
            data=record.row_json or _encode(record.to_row()),
            repo_key=record.repo_key,
            subdir=record.subdir,
            poster_id=record.poster_id,
        )
    )


def experiment_deleted(ctx: WriteContext, record: ExperimentRecord) -> None:
    """Tell subscribers an experiment is gone (``deleted`` event with its id)."""
    _deleted(ctx, record, record.subdir, {"experiment_id": record.id})


def _deleted(
    ctx: WriteContext, record: ExperimentRecord, subdir: str | None, data: dict[str, object]
) -> None:
    ctx.emit(
        repository.NewEvent(
            kind="deleted",
            data=_encode(data),
            repo_key=record.repo_key,
            subdir=subdir,
            poster_id=record.poster_id,
        )
    )


def experiment_moved(ctx: WriteContext, record: ExperimentRecord, old_subdir: str | None) -> None:
    """A run changed subdir: the projects that showed it there drop it and count again
    (those that show it where it is now get its row next). The event names where it went
    (``moved_to``): a project that shows it in both places does not drop it."""
    _deleted(ctx, record, old_subdir, {"experiment_id": record.id, "moved_to": record.subdir})
    projects_changed(
        ctx,
        repository.project_ids_showing(ctx.conn, record.repo_key, old_subdir, record.poster_id),
    )


def points_added(
    ctx: WriteContext,
    record: ExperimentRecord,
    series: dict[str, list[tuple[int, float | None]]],
    images: dict[str, int | None] | None = None,
) -> None:
    """Emit only the new rows of each series, and the paths of the images just stored."""
    ctx.emit(
        repository.NewEvent(
            kind="points",
            data=_encode(
                PointsEvent(
                    experiment_id=record.id,
                    series={k: repository.wire_points(v) for k, v in series.items()},
                    images=images or {},
                )
            ),
            repo_key=record.repo_key,
            subdir=record.subdir,
            poster_id=record.poster_id,
        )
    )


def projects_changed(ctx: WriteContext, project_ids: list[int]) -> None:
    """Emit the project row with fresh counts for each project."""
    for project_id in project_ids:
        ctx.emit(
            repository.NewEvent(
                kind="project",
                data=_encode(repository.project_row_sync(ctx.conn, project_id)),
                project_id=project_id,
                member_ids=repository.project_member_ids_sync(ctx.conn, project_id),
            )
        )


def project_deleted(ctx: WriteContext, project_id: int, member_ids: tuple[int, ...]) -> None:
    """Tell the project's former members it is gone (``project_deleted`` with its id)."""
    ctx.emit(
        repository.NewEvent(
            kind="project_deleted",
            data=_encode({"project_id": project_id}),
            project_id=project_id,
            member_ids=member_ids,
        )
    )


def invited(ctx: WriteContext, invitation: Invitation, invitee: int) -> None:
    """Tell the invited user, on their all-projects stream, that an invitation waits."""
    ctx.emit(
        repository.NewEvent(
            kind="invitation",
            data=_encode(invitation),
            project_id=invitation.project_id,
            member_ids=(invitee,),
        )
    )


def invitation_closed(ctx: WriteContext, project_id: int, invitee: int) -> None:
    """Tell the invited user's streams their invitation no longer waits (declined in
    another session, or withdrawn by the owner): ``invitation_closed`` with the project id."""
    ctx.emit(
        repository.NewEvent(
            kind="invitation_closed",
            data=_encode({"project_id": project_id}),
            project_id=project_id,
            member_ids=(invitee,),
        )
    )


def baseline_changed(
    ctx: WriteContext, user_id: int, project_id: int, experiment_id: int | None
) -> None:
    """Tell the user's streams of the project their baseline is another (or none)."""
    ctx.emit(
        repository.NewEvent(
            kind="baseline",
            data=_encode({"project_id": project_id, "experiment_id": experiment_id}),
            project_id=project_id,
            member_ids=(user_id,),
        )
    )


CREDENTIALS = "credentials"
"""A user's sessions or tokens were revoked: their open streams check theirs again."""


def credentials_revoked(ctx: WriteContext, user_id: int) -> None:
    """Tell the user's open streams to check their credential again (never shown to clients)."""
    ctx.emit(repository.NewEvent(kind=CREDENTIALS, data=b"{}", member_ids=(user_id,)))

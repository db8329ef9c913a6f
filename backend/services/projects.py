"""Projects and their members (SPEC §2, §5.2)."""

from __future__ import annotations

from collections.abc import Callable

import aiosqlite

from backend.db import repository
from backend.db.repository import Principal, ProjectScope
from backend.db.writer import WriteContext
from backend.services import events
from backend.services.errors import InvalidInput, MissingScope, NotFound
from shared.api import ProjectRow
from shared.repo_url import InvalidRepoUrl, repo_key


def _not_found(project_id: int) -> NotFound:
    return NotFound(f"Project {project_id} does not exist or you are not a member of it.")


async def scope_for(db: aiosqlite.Connection, user: Principal, project_id: int) -> ProjectScope:
    """The project's scope if the user is a member; ``NotFound`` otherwise (never 403)."""
    scope = await repository.project_scope(db, project_id, user.user_id)
    if scope is None:
        raise _not_found(project_id)
    return scope


def create_job(
    owner_id: int, name: str, repo_url: str, subdir: str | None
) -> Callable[[WriteContext], ProjectRow]:
    """Create a project owned by (and with the single member) ``owner_id``."""
    name = name.strip()
    if not name:
        raise InvalidInput("A project needs a non-empty name.")
    try:
        key = repo_key(repo_url)
    except InvalidRepoUrl as exc:
        raise InvalidInput(str(exc)) from None
    subdir = (subdir or "").strip().strip("/") or None

    def job(ctx: WriteContext) -> ProjectRow:
        project_id = repository.insert_project(
            ctx.conn, name=name, repo_url=repo_url, repo_key=key, subdir=subdir, owner_id=owner_id
        )
        events.projects_changed(ctx, [project_id])
        return repository.project_row_sync(ctx.conn, project_id)

    return job


def add_member_job(
    user: Principal, project_id: int, username: str
) -> Callable[[WriteContext], ProjectRow]:
    """Add a user to a project the caller is a member of."""

    def job(ctx: WriteContext) -> ProjectRow:
        if user.user_id not in repository.project_member_ids_sync(ctx.conn, project_id):
            raise _not_found(project_id)
        member = repository.user_by_name_sync(ctx.conn, username)
        if member is None:
            raise NotFound(f"There is no user named {username!r}.")
        repository.add_member(ctx.conn, project_id, member.id)
        events.projects_changed(ctx, [project_id])
        return repository.project_row_sync(ctx.conn, project_id)

    return job


def delete_job(user: Principal, project_id: int) -> Callable[[WriteContext], None]:
    """Delete a project; only its owner or an admin may."""

    def job(ctx: WriteContext) -> None:
        members = repository.project_member_ids_sync(ctx.conn, project_id)
        if user.user_id not in members:
            raise _not_found(project_id)
        owner_id = repository.project_owner_id(ctx.conn, project_id)
        if not user.is_admin and owner_id is not None and owner_id != user.user_id:
            raise MissingScope("Only the project's owner or an admin can delete it.")
        repository.delete_project(ctx.conn, project_id)
        events.project_deleted(ctx, project_id, members)

    return job

"""Projects, their members and invitations (SPEC §2, §5.2).

Membership is consent: the owner invites, the invited user accepts, and only then do
their runs show in the project (and the project's runs to them). The owner adds and
removes members and deletes the project; any member may leave, but the owner (delete
the project instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from backend.db import repository
from backend.db.connection import Reader
from backend.db.repository import Principal, ProjectScope
from backend.db.writer import WriteContext, Writer
from backend.services import access, accounts, events, quotas
from backend.services.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from backend.services.experiments import DELETE_AT_MOST
from shared.api import Invitation, Members, ProjectRow
from shared.repo_url import InvalidRepoUrl, repo_key, repo_name, subdir_key, without_credentials
from shared.text import control_problem

log = logging.getLogger(__name__)


def _not_found(project_id: int) -> NotFound:
    return NotFound(f"Project {project_id} does not exist or you are not a member of it.")


async def scope_for(db: Reader, user: Principal, project_id: int) -> ProjectScope:
    """The project's scope if the user is a member; ``NotFound`` otherwise (never 403)."""
    scope = await repository.project_scope(db, project_id, user.user_id)
    if scope is None:
        raise _not_found(project_id)
    return scope


def _check_plain(field: str, value: str) -> None:
    problem = control_problem(f"The {field}", value, invisible=True)
    if problem is not None:
        raise InvalidInput(f"{problem}.")


def create_job(
    owner_id: int, name: str, repo_url: str, subdir: str | None
) -> Callable[[WriteContext], ProjectRow]:
    """Create a project owned by (and with the single member) ``owner_id``."""
    name = name.strip()
    if not name:
        raise InvalidInput("A project needs a non-empty name.")
    for field, value in (("name", name), ("repo_url", repo_url), ("subdir", subdir or "")):
        _check_plain(field, value)
    try:
        key = repo_key(repo_url)
    except InvalidRepoUrl as exc:
        raise InvalidInput(str(exc)) from None
    subdir = subdir_key(subdir)
    if subdir is not None and ".." in subdir.split("/"):
        raise InvalidInput(
            f"subdir {subdir!r} leaves the repository; give the sub-project's path inside it"
            " (as `dvc` runs from it: sub/project)."
        )

    def job(ctx: WriteContext) -> ProjectRow:
        same = repository.same_project_of(ctx.conn, owner_id, name, key, subdir)
        if same is not None:  # the same command twice: a second, identical project
            raise Conflict(
                f"There is a project {name!r} for this repository already (id {same}); give"
                " a second one another name."
            )
        quotas.check_may_own_another(ctx, owner_id)
        project_id = repository.insert_project(
            ctx.conn,
            name=name,
            repo_url=without_credentials(repo_url),
            repo_key=key,
            subdir=subdir,
            owner_id=owner_id,
        )
        events.projects_changed(ctx, [project_id])
        return repository.project_row_sync(ctx.conn, project_id)

    return job


def transfer_job(project_id: int, new_owner: int) -> Callable[[WriteContext], ProjectRow]:
    """An admin hands a project to another user (its owner left, or was locked out): they
    become its owner, and a member if they were not (an invitation of theirs is used)."""

    def job(ctx: WriteContext) -> ProjectRow:
        if repository.project_owner_id(ctx.conn, project_id) == new_owner:
            return repository.project_row_sync(ctx.conn, project_id)
        if repository.password_hash_of(ctx.conn, new_owner) == repository.LOCKED:
            raise Conflict(
                "That user is locked out and could not manage it; `livestudio user password`"
                " lets them in first, or give it to someone else."
            )
        identity = repository.project_identity(ctx.conn, project_id)
        if identity is None:
            raise NotFound(f"There is no project {project_id}.")
        same = repository.same_project_of(ctx.conn, new_owner, *identity)
        if same is not None:
            raise Conflict(
                f"That user owns a project {identity[0]!r} for this repository already (id"
                f" {same}); delete one of them first."
            )
        quotas.check_may_own_another(ctx, new_owner)
        if not repository.set_owner(ctx.conn, project_id, new_owner):
            raise NotFound(f"There is no project {project_id}.")
        repository.drop_invitation(ctx.conn, project_id, new_owner)
        if new_owner not in repository.project_member_ids_sync(ctx.conn, project_id):
            repository.add_member(ctx.conn, project_id, new_owner)
        events.projects_changed(ctx, [project_id])
        return repository.project_row_sync(ctx.conn, project_id)

    return job


def _member_project(ctx: WriteContext, user: Principal, project_id: int) -> tuple[int, ...]:
    members = repository.project_member_ids_sync(ctx.conn, project_id)
    if user.user_id not in members:
        raise _not_found(project_id)
    return members


def _user_id(ctx: WriteContext, username: str) -> int:
    found = repository.user_by_name_sync(ctx.conn, username)
    if found is None:
        raise NotFound(f"There is no user named {username!r}.")
    return found.id


def invite_job(
    user: Principal, project_id: int, username: str
) -> Callable[[WriteContext], Members]:
    """Invite a user to the project; only its owner may. They join once they accept."""

    def job(ctx: WriteContext) -> Members:
        members = _member_project(ctx, user, project_id)
        access.require_owner(
            user, repository.project_owner_id(ctx.conn, project_id), "invite members"
        )
        invitee = _user_id(ctx, username)
        if invitee in members:
            raise Conflict(f"{username} is already a member of this project.")
        quotas.check_may_invite(ctx, project_id, invitee, username, user.user_id)
        repository.invite(ctx.conn, project_id, invitee, user.user_id)
        invitation = repository.invitation_sync(ctx.conn, project_id, invitee)
        assert invitation is not None
        events.invited(ctx, invitation, invitee)
        events.projects_changed(ctx, [project_id])  # members' lists show the invited
        return repository.members_of_sync(ctx.conn, project_id)

    return job


def remove_member_job(
    user: Principal, project_id: int, username: str, only_invitation: bool = False
) -> Callable[[WriteContext], None]:
    """Remove a member or withdraw an invitation (owner), or leave the project (anyone).

    ``only_invitation``: withdraw an invitation, and never remove a member — an owner who
    asked to withdraw one is not to remove someone who accepted it meanwhile (409).
    """

    def job(ctx: WriteContext) -> None:
        members = _member_project(ctx, user, project_id)
        owner_id = repository.project_owner_id(ctx.conn, project_id)
        not_here = NotFound(f"{username} is neither a member of nor invited to this project.")
        found = repository.user_by_name_sync(ctx.conn, username)
        # An unknown name gets the answers a user who is not in the project gets: removing
        # is no way to learn who has an account.
        target = found.id if found is not None else None
        if target != user.user_id:
            access.require_owner(user, owner_id, "remove members")
        elif target == owner_id:
            raise Conflict("The owner cannot leave the project; delete it instead.")
        if only_invitation and target is not None and target in members:
            raise Conflict(
                f"{username} accepted the invitation meanwhile and is a member now;"
                " remove them if that is what you want."
            )
        if target is not None and target in members:
            stranded = [
                r.id
                for r in repository.experiments_only_shown_by(ctx.conn, project_id)
                if r.poster_id == target
            ]
            repository.remove_member(ctx.conn, project_id, target)
            events.projects_changed(ctx, [project_id])
            # For the one who left, the project no longer exists.
            events.project_deleted(ctx, project_id, (target,))
            if stranded:
                _rehome(ctx, repository.project_row_sync(ctx.conn, project_id).repo_url, target)
        elif target is None or not repository.drop_invitation(ctx.conn, project_id, target):
            raise not_here
        else:
            events.projects_changed(ctx, [project_id])
            events.invitation_closed(ctx, project_id, target)

    return job


def _rehome(ctx: WriteContext, repo_url: str, user_id: int) -> None:
    """Give a former member whose runs only their old project showed a project of their
    own for the repository, as their first run would have: no accepted data is ever
    invisible."""
    ctx.flush()  # a new member's stream starts after the newest event id, written ones only
    new_id = repository.insert_project(
        ctx.conn,
        name=repo_name(repo_url),
        repo_url=repo_url,
        repo_key=repo_key(repo_url),
        subdir=None,
        owner_id=user_id,
    )
    events.projects_changed(ctx, [new_id])


def answer_invitation_job(
    user: Principal, project_id: int, accept: bool
) -> Callable[[WriteContext], ProjectRow | None]:
    """Accept (join, returning the project) or decline an invitation."""

    def job(ctx: WriteContext) -> ProjectRow | None:
        accounts.check_still_logged_in(ctx, user.session_id)  # (a lock meanwhile)
        if not repository.drop_invitation(ctx.conn, project_id, user.user_id):
            if user.user_id in repository.project_member_ids_sync(ctx.conn, project_id):
                raise Conflict(f"You are a member of project {project_id} already.")
            raise NotFound(f"You have no invitation to project {project_id}.")
        if not accept:
            events.projects_changed(ctx, [project_id])  # the owner's list of the invited
            events.invitation_closed(ctx, project_id, user.user_id)  # my other sessions
            return None
        repository.add_member(ctx.conn, project_id, user.user_id)
        events.projects_changed(ctx, [project_id])
        return repository.project_row_sync(ctx.conn, project_id)

    return job


async def members(db: Reader, user: Principal, project_id: int) -> Members:
    """Members and invited users of a project the user is a member of."""
    await scope_for(db, user, project_id)
    return await repository.members_of(db, project_id)


async def invitations(db: Reader, user: Principal) -> list[Invitation]:
    """The user's pending invitations."""
    return await repository.invitations_of(db, user.user_id)


RUNS_PER_PART = 200
"""Runs deleted per transaction when deleting a project (with their series and images)."""


async def delete(writer: Writer, user: Principal, project_id: int) -> int:
    """Delete a project and the runs of yours no other project shows; how many runs went.

    Which runs go is decided once, first; then they go a bounded part per transaction
    (their points, then the runs themselves), so that other requests go on in between (a
    run of millions of points, or thousands of runs, would hold them for seconds); the
    project itself goes last. The first transaction notes the deletion, so a server
    stopped part-way finishes it when it starts again (``finish_deletions``).
    """
    doomed = await writer.submit(doomed_job(user, project_id))
    gone = 0
    while True:
        done, runs = await writer.submit(purge_part_job(user, project_id, doomed))
        gone += runs
        if done:
            return gone + await writer.submit(delete_job(user, project_id, doomed))


def _check_may_delete(ctx: WriteContext, user: Principal, project_id: int) -> tuple[int, ...]:
    """The members of a project the user may delete (its owner, or an admin member)."""
    members = _member_project(ctx, user, project_id)
    owner_id = repository.project_owner_id(ctx.conn, project_id)
    if not user.is_admin and owner_id is not None and owner_id != user.user_id:
        raise Forbidden("Only the project's owner or an admin can delete it.")
    return members


def _doomed(ctx: WriteContext, user: Principal, project_id: int) -> list[int]:
    orphans = repository.experiments_only_shown_by(ctx.conn, project_id)
    return sorted(r.id for r in orphans if r.poster_id == user.user_id)


def doomed_job(user: Principal, project_id: int) -> Callable[[WriteContext], list[int]]:
    """The runs deleting the project deletes: the user's that no other project shows."""

    def job(ctx: WriteContext) -> list[int]:
        _check_may_delete(ctx, user, project_id)
        repository.record_deletion(ctx.conn, project_id, user.user_id, time.time())
        return _doomed(ctx, user, project_id)

    return job


async def finish_deletions(writer: Writer) -> int:
    """Finish the project deletions a stopped server left part-way; how many it finished.

    Each goes on as its user's own deletion would, with the runs that are theirs at this
    moment. One its user may no longer make (no longer an admin, say) is dropped, and the
    project stays as the part-way deletion left it, as a refused deletion would.
    """
    finished = 0
    for project_id, user in await writer.submit(_unfinished_job):
        try:
            await delete(writer, user, project_id)
        except (Forbidden, NotFound) as exc:
            log.warning("project %s is no longer deleted: %s", project_id, exc.detail)
            await writer.submit(_forget_job(project_id))
        except DomainError as exc:  # the database busy, say: the next start tries again
            log.warning("finishing the deletion of project %s failed: %s", project_id, exc.detail)
        else:
            log.info("finished deleting project %s for %s", project_id, user.username)
            finished += 1
    return finished


def _unfinished_job(ctx: WriteContext) -> list[tuple[int, Principal]]:
    return repository.unfinished_deletions(ctx.conn)


def _forget_job(project_id: int) -> Callable[[WriteContext], None]:
    def job(ctx: WriteContext) -> None:
        repository.forget_deletion(ctx.conn, project_id)

    return job


def purge_part_job(
    user: Principal,
    project_id: int,
    doomed: list[int],
    at_most: int = DELETE_AT_MOST,
    runs_at_most: int = RUNS_PER_PART,
) -> Callable[[WriteContext], tuple[bool, int]]:
    """Delete up to ``at_most`` points of the doomed runs, and up to ``runs_at_most`` of
    the runs once emptied; (whether none is left, how many runs went)."""

    def job(ctx: WriteContext) -> tuple[bool, int]:
        _check_may_delete(ctx, user, project_id)
        points = runs = 0
        done = True
        for record in repository.experiments_by_ids(ctx.conn, doomed, runs_at_most + 1):
            points += repository.delete_some_points(ctx.conn, record.id, at_most - points)
            if points >= at_most or runs >= runs_at_most:
                done = False
                break
            repository.delete_experiment(ctx.conn, record.id)  # its series and images too
            events.experiment_deleted(ctx, record)
            runs += 1
        if runs:
            events.projects_changed(ctx, [project_id])
        return done, runs

    return job


def delete_job(
    user: Principal, project_id: int, doomed: list[int] | None = None
) -> Callable[[WriteContext], int]:
    """Delete the project, and the doomed runs still there (``doomed_job``'s when not
    given); returns how many runs went.

    Only its owner (or an admin who is a member) may. Runs another project shows stay
    there. Of the others, which would be visible to nobody (their posters included) while
    filling the disk, the deleting user's go with the project; another member's move to a
    project of their own for the repository, as when they leave: deleting it is not
    their choice.
    """

    def job(ctx: WriteContext) -> int:
        members = _check_may_delete(ctx, user, project_id)
        repo_url = repository.project_row_sync(ctx.conn, project_id).repo_url
        ids = _doomed(ctx, user, project_id) if doomed is None else doomed
        mine = repository.experiments_by_ids(ctx.conn, ids, len(ids))
        for record in mine:
            repository.delete_experiment(ctx.conn, record.id)
            events.experiment_deleted(ctx, record)
        others = {r.poster_id for r in repository.experiments_only_shown_by(ctx.conn, project_id)}
        repository.delete_project(ctx.conn, project_id)
        events.project_deleted(ctx, project_id, members)
        for poster_id in sorted(others - {user.user_id}):
            _rehome(ctx, repo_url, poster_id)
        return len(mine)

    return job

"""Projects, their members and invitations, and their experiment lists."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody

from backend.api.deps import SESSION_ONLY, BackendDep, UserDep
from backend.db import repository
from backend.services import experiments, projects
from shared.api import ExperimentRow, Invitation, MemberAdd, Members, ProjectCreate, ProjectRow


class ProjectController(Controller):
    """``/api/projects``."""

    path = "/api/projects"

    @get()
    async def list_projects(self, backend: BackendDep, user: UserDep) -> list[ProjectRow]:
        """Projects the user is a member of, with experiment and running counts."""
        return await repository.projects_of(backend.reader, user.user_id)

    @post(status_code=201, dependencies=SESSION_ONLY)
    async def create(
        self, data: JSONBody[ProjectCreate], backend: BackendDep, user: UserDep
    ) -> ProjectRow:
        """Create a project for a Git repository (and optional monorepo subdir)."""
        return await backend.writer.submit(
            projects.create_job(user.user_id, data.name, data.repo_url, data.subdir)
        )

    @delete("/{project_id:int}", dependencies=SESSION_ONLY)
    async def remove(self, project_id: FromPath[int], backend: BackendDep, user: UserDep) -> None:
        """Delete a project and the runs no other project shows (its owner only)."""
        await projects.delete(backend.writer, user, project_id)

    @get("/{project_id:int}/members")
    async def members(
        self, project_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> Members:
        """The owner, the members and the users invited but not yet joined."""
        return await projects.members(backend.reader, user, project_id)

    @post("/{project_id:int}/members", status_code=201, dependencies=SESSION_ONLY)
    async def invite(
        self,
        project_id: FromPath[int],
        data: JSONBody[MemberAdd],
        backend: BackendDep,
        user: UserDep,
    ) -> Members:
        """Invite a user (owner only); they join, and their runs show, once they accept."""
        return await backend.writer.submit(projects.invite_job(user, project_id, data.username))

    @delete("/{project_id:int}/members/{username:str}", dependencies=SESSION_ONLY)
    async def remove_member(
        self,
        project_id: FromPath[int],
        username: FromPath[str],
        backend: BackendDep,
        user: UserDep,
        only_invitation: FromQuery[bool] = False,
    ) -> None:
        """Remove a member or withdraw an invitation (owner), or leave (your own name).

        ``?only_invitation=true`` withdraws an invitation and never removes a member (409
        if they accepted meanwhile).
        """
        await backend.writer.submit(
            projects.remove_member_job(user, project_id, username, only_invitation)
        )

    @get(
        "/{project_id:int}/experiments",
        responses={200: ResponseSpec(list[ExperimentRow], description="Experiment rows")},
    )
    async def list_experiments(
        self,
        project_id: FromPath[int],
        backend: BackendDep,
        user: UserDep,
        status: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """Experiments of the project with flattened metrics and params."""
        rows = await experiments.list_rows_json(backend.reader, user, project_id, status)
        return Response(rows, media_type=MediaType.JSON)


class InvitationController(Controller):
    """``/api/invitations``: the invitations waiting for the logged-in user's answer."""

    path = "/api/invitations"
    dependencies = SESSION_ONLY

    @get()
    async def pending(self, backend: BackendDep, user: UserDep) -> list[Invitation]:
        """Invitations to projects, newest first."""
        return await projects.invitations(backend.reader, user)

    @post("/{project_id:int}/accept", status_code=200)
    async def accept(
        self, project_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> ProjectRow:
        """Join the project: your runs show there, and its runs to you."""
        joined = await backend.writer.submit(
            projects.answer_invitation_job(user, project_id, accept=True)
        )
        assert joined is not None
        return joined

    @delete("/{project_id:int}")
    async def decline(self, project_id: FromPath[int], backend: BackendDep, user: UserDep) -> None:
        """Decline the invitation."""
        await backend.writer.submit(projects.answer_invitation_job(user, project_id, accept=False))

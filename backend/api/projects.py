"""Projects, their members and their experiment lists."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody

from backend.api.deps import BackendDep, UserDep
from backend.db import repository
from backend.services import experiments, projects
from shared.api import ExperimentRow, MemberAdd, ProjectCreate, ProjectRow


class ProjectController(Controller):
    """``/api/projects``."""

    path = "/api/projects"

    @get()
    async def list_projects(self, backend: BackendDep, user: UserDep) -> list[ProjectRow]:
        """Projects the user is a member of, with experiment and running counts."""
        return await repository.projects_of(backend.reader, user.user_id)

    @post(status_code=201)
    async def create(
        self, data: JSONBody[ProjectCreate], backend: BackendDep, user: UserDep
    ) -> ProjectRow:
        """Create a project for a Git repository (and optional monorepo subdir)."""
        return await backend.writer.submit(
            projects.create_job(user.user_id, data.name, data.repo_url, data.subdir)
        )

    @delete("/{project_id:int}")
    async def remove(self, project_id: FromPath[int], backend: BackendDep, user: UserDep) -> None:
        """Delete a project (its experiments stay with their posters)."""
        await backend.writer.submit(projects.delete_job(user, project_id))

    @post("/{project_id:int}/members", status_code=200)
    async def add_member(
        self,
        project_id: FromPath[int],
        data: JSONBody[MemberAdd],
        backend: BackendDep,
        user: UserDep,
    ) -> ProjectRow:
        """Add a user to the project."""
        return await backend.writer.submit(projects.add_member_job(user, project_id, data.username))

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

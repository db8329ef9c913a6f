"""Watches, the alerts they fired, and each user's baseline per project."""

from __future__ import annotations

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from backend.api.deps import SESSION_ONLY, BackendDep, UserDep
from backend.services import watches
from shared.watches import AlertInfo, Baseline, BaselineSet, WatchCreate, WatchInfo


class WatchController(Controller):
    """``/api/watches``: conditions the server evaluates for me as data arrives."""

    path = "/api/watches"

    @get()
    async def list_watches(self, backend: BackendDep, user: UserDep) -> list[WatchInfo]:
        """My watches."""
        return await watches.list_watches(backend.reader, user)

    @post(status_code=201, dependencies=SESSION_ONLY)
    async def create(
        self, data: JSONBody[WatchCreate], backend: BackendDep, user: UserDep
    ) -> WatchInfo:
        """Watch an experiment or every experiment of a project."""
        private = backend.settings.webhook_allow_private
        return await backend.writer.submit(watches.create_job(user, data, backend.clock, private))

    @put("/{watch_id:int}", dependencies=SESSION_ONLY)
    async def replace(
        self,
        watch_id: FromPath[int],
        data: JSONBody[WatchCreate],
        backend: BackendDep,
        user: UserDep,
    ) -> WatchInfo:
        """Change a watch in place (same body as creating one); it fires afresh."""
        private = backend.settings.webhook_allow_private
        return await backend.writer.submit(watches.replace_job(user, watch_id, data, private))

    @delete("/{watch_id:int}", dependencies=SESSION_ONLY)
    async def remove(self, watch_id: FromPath[int], backend: BackendDep, user: UserDep) -> None:
        """Stop watching (the alerts it fired stay listed)."""
        await backend.writer.submit(watches.delete_job(user, watch_id))


class AlertController(Controller):
    """``/api/alerts``: what my watches fired, newest first, with webhook attempts."""

    path = "/api/alerts"

    @get()
    async def list_alerts(
        self, backend: BackendDep, user: UserDep, limit: FromQuery[int] = 50
    ) -> list[AlertInfo]:
        """My newest alerts."""
        return await watches.list_alerts(backend.reader, user, limit)


class BaselineController(Controller):
    """``/api/projects/{id}/baseline``: the experiment I compare the project's runs against."""

    path = "/api/projects/{project_id:int}/baseline"

    @get()
    async def baseline(
        self, project_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> Baseline:
        """My baseline of the project (``experiment_id`` null when none)."""
        return await watches.baseline(backend.reader, user, project_id)

    @put(dependencies=SESSION_ONLY)
    async def pin(
        self,
        project_id: FromPath[int],
        data: JSONBody[BaselineSet],
        backend: BackendDep,
        user: UserDep,
    ) -> Baseline:
        """Pin an experiment the project shows as my baseline."""
        return await backend.writer.submit(
            watches.set_baseline_job(user, project_id, data.experiment_id)
        )

    @delete(dependencies=SESSION_ONLY)
    async def unpin(self, project_id: FromPath[int], backend: BackendDep, user: UserDep) -> None:
        """Unpin my baseline."""
        await backend.writer.submit(watches.set_baseline_job(user, project_id, None))

"""One experiment: details, series, images, and manual control."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from backend.api.deps import SESSION_ONLY, BackendDep, UserDep
from backend.services import experiments
from backend.services.image_types import image_type
from shared.api import ExperimentDetail, ExperimentRow


class ExperimentController(Controller):
    """``/api/experiments/{id}``."""

    path = "/api/experiments/{experiment_id:int}"

    @get()
    async def detail(
        self, experiment_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> ExperimentDetail:
        """The experiment row plus its series names and images."""
        return await experiments.detail(backend.reader, user, experiment_id)

    @get(
        "/series",
        # The body is streamed (see ``services.experiments.series``); its shape for the schema:
        responses={
            200: ResponseSpec(
                dict[str, list[list[float | str | None]]],
                description="{name: [[step, value], ...]}, or [step, value, arrived_at]",
                generate_examples=False,
            )
        },
    )
    async def series(
        self,
        experiment_id: FromPath[int],
        backend: BackendDep,
        user: UserDep,
        names: FromQuery[str | None] = None,
        name: FromQuery[list[str] | None] = None,
        max_points: FromQuery[int | None] = None,
        times: FromQuery[bool] = False,
        at: FromQuery[int | None] = None,
    ) -> Stream:
        """``{name: [[step, value], ...]}``; NaN and ±inf as strings; optionally downsampled.

        ``names=a,b`` or ``name=a&name=b`` (the latter for a name holding a comma) choose
        series; none: every one. With ``times=true`` each point is ``[step, value,
        arrived_at]`` (UNIX seconds). With ``at=STEP``, only each series' point at that
        step or the last before it.
        """
        wanted = [n for n in (names or "").split(",") if n] + [n for n in name or [] if n]
        if name and not wanted:  # asked for by name, none given: none (not every one)
            return Stream(iter([b"{}"]), media_type=MediaType.JSON)
        body = await experiments.series(
            backend.reader,
            backend.writer,
            user,
            experiment_id,
            wanted or None,
            max_points,
            times,
            at,
        )
        return Stream(body, media_type=MediaType.JSON)

    @get("/images/{path:path}", media_type="image/png")
    async def image(
        self, experiment_id: FromPath[int], path: FromPath[str], backend: BackendDep, user: UserDep
    ) -> Response[bytes]:
        """The latest picture (PNG, JPEG or GIF) stored under ``path``."""
        data = await experiments.image(backend.reader, user, experiment_id, path.lstrip("/"))
        # (Stored before pictures were checked, anything else is served as bytes.)
        return Response(data, media_type=image_type(data) or "application/octet-stream")

    @delete(dependencies=SESSION_ONLY)
    async def remove(
        self, experiment_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> None:
        """Delete the experiment with its series and images."""
        await experiments.delete(backend.writer, user, experiment_id)

    @post("/fail", status_code=200, media_type=MediaType.JSON, dependencies=SESSION_ONLY)
    async def mark_failed(
        self, experiment_id: FromPath[int], backend: BackendDep, user: UserDep
    ) -> ExperimentRow:
        """Mark the experiment Failed by hand (for runs that died without a trace)."""
        return await backend.writer.submit(
            experiments.mark_failed_job(
                user, experiment_id, f"marked failed by {user.username}", backend.clock
            )
        )

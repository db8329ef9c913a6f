"""``POST /api/live/finish``: ``livestudio run`` finishing its run once the command succeeded.

DVCLive's own ``done`` is lost when the server restarts as training ends, and the run then
ends Stopped though it completed. The wrapper knows better (the command exited 0), but it
cannot tell whether the command used DVCLive at all, so this ``done`` is applied only to a
run that exists and has not ended: it never creates an experiment.
"""

from __future__ import annotations

from litestar import Controller, Request, post

from backend.api.deps import BackendDep
from backend.api.guards import bearer_token, token_first
from backend.services import ingest
from backend.services.errors import InvalidInput
from shared.api import RunFinished
from shared.live import DoneEvent


class RunFinishController(Controller):
    """The wrapper's end-of-run report."""

    @post("/api/live/finish", status_code=200, guards=[token_first])
    async def finish(self, request: Request, backend: BackendDep) -> RunFinished:
        """Apply a live ``done`` event (same body as ``POST /api/live``) to the poster's run
        if it is Running or Stopped; ``experiment_id`` is null when nothing was finished."""
        parsed = ingest.parse(await request.body())
        if not isinstance(parsed.event, DoneEvent):
            raise InvalidInput(
                "Only a `done` event finishes a run here; send other events to /api/live."
            )
        finished = await backend.writer.submit(
            ingest.finish_job(bearer_token(request), parsed, backend.clock)
        )
        return RunFinished(status="ok", experiment_id=finished)

"""``POST /api/live/finish``: ``livestudio run`` finishing its run once its command ended.

DVCLive's own ``done`` is lost when the server restarts as training ends, and the run then
ends Stopped though it completed. The wrapper knows better (the command exited 0), but it
cannot tell whether the command used DVCLive at all, so this ``done`` is applied only to a
run that exists, posted since the command started and has not ended: it never creates an
experiment. A failed command's ``done`` (with ``errors``) goes to that run whatever its
status (DVCLive sends a normal ``done`` though training raised), never to an older one.
"""

from __future__ import annotations

import math

from litestar import Controller, Request, post
from litestar.params import FromQuery

from backend.api.deps import BackendDep
from backend.api.guards import bearer_token, token_first
from backend.services import ingest
from backend.services.errors import InvalidInput
from shared.api import RunFinished
from shared.live import DoneEvent


class RunFinishController(Controller):
    """The wrapper's end-of-run report."""

    @post("/api/live/finish", status_code=200, guards=[token_first])
    async def finish(
        self, request: Request, backend: BackendDep, since: FromQuery[str | None] = None
    ) -> RunFinished:
        """Apply a live ``done`` event (same body as ``POST /api/live``) to the poster's run
        if it posted at ``since`` (server time, epoch seconds) or later and, without
        ``errors``, is Running or Stopped; ``experiment_id`` is null when nothing was
        finished."""
        parsed = ingest.parse(await request.body())
        event = parsed.event
        if not isinstance(event, DoneEvent) or event.client != "dvclive":
            raise InvalidInput(
                "Only a DVCLive `done` finishes a run here; send other events to /api/live."
            )
        finished = await backend.writer.submit(
            ingest.finish_job(bearer_token(request), parsed, _time(since), backend.clock)
        )
        return RunFinished(status="ok", experiment_id=finished)


def _time(since: str | None) -> float:
    """``since``: seconds since 1970, a finite number (the server's time as the command
    started, from the ``Date`` of the wrapper's first request)."""
    try:
        value = float(since) if since is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidInput(
            "Say since when the run must have posted: ?since=SECONDS (since 1970, a finite"
            " number: the server's time as the command started)."
        )
    return value

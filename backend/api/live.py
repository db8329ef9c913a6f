"""``POST /api/live``: the Studio live-metrics endpoint DVCLive and DVC post to."""

from __future__ import annotations

from litestar import Controller, Request, post

from backend.api.deps import BackendDep
from backend.services import ingest
from backend.services.accounts import parse_authorization
from backend.services.errors import NotAuthenticated
from shared.api import LiveAccepted

MISSING_TOKEN = (
    "An access token is missing: set DVC_STUDIO_TOKEN to a livestudio token"
    " (create one with `livestudio token create` or in the TUI profile screen)."
)


class LiveController(Controller):
    """Ingestion of start/data/done events."""

    path = "/api/live"

    @post(status_code=200, summary="Ingest one live event (Studio protocol)")
    async def ingest(self, request: Request, backend: BackendDep) -> LiveAccepted:
        """Answers 200 only once the event is committed."""
        token = parse_authorization(request.headers.get("authorization"))
        if token is None:
            raise NotAuthenticated(MISSING_TOKEN)
        parsed = ingest.parse(await request.body())
        experiment_id = await backend.writer.submit(ingest.ingest_job(token, parsed, backend.clock))
        return LiveAccepted(status="ok", experiment_id=experiment_id)

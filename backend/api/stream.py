"""Server-sent event streams: one project, or every project of the user."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Stream

from backend.api.deps import BackendDep, UserDep
from backend.db import repository
from backend.db.connection import database_errors
from backend.services import accounts, broadcast, projects
from backend.services.errors import InvalidInput, NotAuthenticated


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput("Last-Event-ID must be the integer id of an event.") from None


class StreamController(Controller):
    """``text/event-stream`` endpoints (SPEC §5.4)."""

    @get("/api/projects/{project_id:int}/events")
    async def project_events(
        self, project_id: FromPath[int], request: Request, backend: BackendDep, user: UserDep
    ) -> Stream:
        """Experiment, points, deleted, project and reset events of one project."""
        scope = await projects.scope_for(backend.reader, user, project_id)

        async def refilter(_: int) -> broadcast.EventFilter | None:
            now = await repository.project_scope(backend.reader, project_id, user.user_id)
            return None if now is None else broadcast.ProjectFilter(user.user_id, now)

        event_filter = broadcast.ProjectFilter(user.user_id, scope)
        return self._stream(request, backend, event_filter, refilter)

    @get("/api/events")
    async def all_events(self, request: Request, backend: BackendDep, user: UserDep) -> Stream:
        """The same events for every project the user can see, plus ``project`` rows."""

        async def refilter(as_of: int) -> broadcast.EventFilter:
            scopes = await repository.project_scopes_of(backend.reader, user.user_id)
            return broadcast.UserFilter(
                user.user_id, {s.id: s for s in scopes}, as_of, invitations=user.is_session
            )

        event_filter = broadcast.UserFilter(user.user_id, invitations=user.is_session)
        return self._stream(request, backend, event_filter, refilter)

    @staticmethod
    def _stream(
        request: Request,
        backend: BackendDep,
        event_filter: broadcast.EventFilter,
        refilter: Callable[[int], Awaitable[broadcast.EventFilter | None]],
    ) -> Stream:
        last = _last_event_id(request)
        slot = backend.streams.reserve(event_filter.user_id)
        credential = accounts.parse_authorization(request.headers.get("authorization")) or ""

        async def still_allowed() -> bool:
            try:
                await accounts.authenticate(
                    backend.reader, credential, backend.settings.session_days, backend.clock()
                )
            except NotAuthenticated:
                return False
            except database_errors():  # not known to be allowed: end; the client reconnects
                return False
            return True

        # A plain stream of ready-made SSE bytes: each event is encoded once for every
        # client it goes to (Litestar's ServerSentEvent would encode it once per client).
        events = broadcast.stream(
            db=backend.reader,
            channels=backend.channels,
            event_filter=event_filter,
            last_event_id=last,
            heartbeat=backend.settings.heartbeat,
            backlog=backend.settings.subscriber_backlog,
            streams=backend.streams,
            still_allowed=still_allowed,
            slot=slot,
            refilter=refilter,
        )
        # A stream never started (the client went before its answer) gives its place
        # back when it is collected; one that ran gives it back as it ends.
        weakref.finalize(events, slot.release)
        return Stream(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

"""``POST /webhook/dvc``: what ``dvc exp push`` sends after pushing experiments."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody

from backend.api.deps import BackendDep
from backend.api.live import MISSING_TOKEN
from backend.services import ingest, push
from backend.services.accounts import parse_authorization
from backend.services.errors import NotAuthenticated


class Refs(msgspec.Struct, frozen=True):
    """Experiment refs that were pushed or removed."""

    pushed: list[str] = []
    removed: list[str] = []


class Notification(msgspec.Struct, frozen=True):
    """DVC's notification body."""

    repo_url: str
    refs: Refs
    client: str = "dvc"


class Recorded(msgspec.Struct, frozen=True):
    """How many experiments changed."""

    status: str
    pushed: int
    removed: int


async def token_first(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a stranger before the body is read (guards run before it is parsed): a
    stranger's 30 MB of refs must not cost a second of reading and decoding before its 401."""
    token = parse_authorization(connection.headers.get("authorization"))
    if token is None:
        raise NotAuthenticated(MISSING_TOKEN)
    await ingest.check_token(connection.app.state.backend.reader, token)


class WebhookController(Controller):
    """DVC's push notifications."""

    @post("/webhook/dvc", status_code=200, guards=[token_first])
    async def notify(
        self, request: Request, data: JSONBody[Notification], backend: BackendDep
    ) -> Recorded:
        """Record which experiments were pushed; the TUI marks them."""
        token = parse_authorization(request.headers.get("authorization"))
        if token is None:
            raise NotAuthenticated(MISSING_TOKEN)
        counts = await push.notify(
            backend.writer,
            token,
            data.repo_url,
            data.refs.pushed,
            data.refs.removed,
            backend.clock(),
        )
        return Recorded(status="ok", **counts)

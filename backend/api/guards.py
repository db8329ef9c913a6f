"""Guards shared by the endpoints that DVCLive, DVC and ``livestudio run`` post to."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.services import ingest
from backend.services.accounts import parse_authorization
from backend.services.errors import NotAuthenticated

MISSING_TOKEN = (
    "An access token is missing: set DVC_STUDIO_TOKEN to a livestudio token"
    " (create one with `livestudio token create` or in the TUI profile screen)."
)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The access token a client sent, or the 401 that names ``DVC_STUDIO_TOKEN``."""
    token = parse_authorization(connection.headers.get("authorization"))
    if token is None:
        raise NotAuthenticated(MISSING_TOKEN)
    return token


async def token_first(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a stranger before the body is read (guards run before it is parsed): a
    stranger's 30 MB of refs must not cost a second of reading and decoding before its 401."""
    await ingest.check_token(connection.app.state.backend.reader, bearer_token(connection))

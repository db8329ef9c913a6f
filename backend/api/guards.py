"""Guards shared by the endpoints that DVCLive, DVC and ``livestudio run`` post to."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.services import ingest
from backend.services.accounts import SESSION_PREFIX, parse_authorization
from backend.services.errors import NotAuthenticated

MISSING_TOKEN = (
    "An access token is missing: set DVC_STUDIO_TOKEN to a livestudio token"
    " (create one with `livestudio token create` or in the TUI profile screen)."
)


SESSION_NOT_TOKEN = (
    "This is a login session (`lss_…`), not an access token: DVCLive, DVC and `livestudio"
    " run` need an access token (`lst_…`); create one with `livestudio token create` or in"
    " the TUI profile screen."
)


def access_token(authorization: str | None) -> str:
    """The access token in an ``Authorization`` header, or the 401 that says what to send."""
    token = parse_authorization(authorization)
    if token is None:
        raise NotAuthenticated(MISSING_TOKEN)
    if token.startswith(SESSION_PREFIX):  # (told it was "revoked", its owner made new ones)
        raise NotAuthenticated(SESSION_NOT_TOKEN)
    return token


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The access token a client sent, or the 401 that names ``DVC_STUDIO_TOKEN``."""
    return access_token(connection.headers.get("authorization"))


async def token_first(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a stranger before the body is read (guards run before it is parsed): a
    stranger's 30 MB of refs must not cost a second of reading and decoding before its 401."""
    await ingest.check_token(connection.app.state.backend.reader, bearer_token(connection))

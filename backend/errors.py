"""The one place that turns errors into HTTP answers: ``{"status_code", "detail"}``."""

from __future__ import annotations

import logging
import math
import os
import re
import traceback

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from backend.db.writer import storage_error
from backend.services.errors import (
    Conflict,
    DiskFull,
    DomainError,
    Forbidden,
    InvalidInput,
    MissingScope,
    NotAuthenticated,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
)

log = logging.getLogger("livestudio")

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    MissingScope: 403,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    RateLimited: 429,
    Unavailable: 503,
    DiskFull: 507,
}


DECODER_FILE = os.path.join("litestar", "serialization", "msgspec_hooks.py")
"""Where Litestar decodes JSON bodies (msgspec's C decoder runs out of stack under it)."""
_DECODE_ERROR = re.compile(r"(?P<what>[^\n]+) - at `(?P<where>\$[^`]*)`")
"""msgspec's error for a body it could not read, and where in the body."""
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
"""On every answer: each is one user's (tokens, runs), so no cache keeps it, and no browser
guesses its type."""


def error_response(
    status_code: int, detail: str, retry_after: float | None = None
) -> Response[dict[str, object]]:
    """The JSON error body every endpoint uses (with ``Retry-After`` when it applies)."""
    return Response(
        {"status_code": status_code, "detail": detail},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers={**PRIVATE_HEADERS, **retry_after_header(retry_after)},
    )


def retry_after_header(retry_after: float | None) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1), or nothing."""
    return {} if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}


def domain_error_body(exc: DomainError, status: int | None = None) -> tuple[int, bytes]:
    """Status and JSON body of a domain error, for handlers that answer without Litestar."""
    code = status or STATUS_OF.get(type(exc), 400)
    return code, msgspec.json.encode({"status_code": code, "detail": exc.detail})


def _domain(_: Request, exc: DomainError) -> Response[dict[str, object]]:
    return error_response(STATUS_OF.get(type(exc), 400), exc.detail, exc.retry_after)


def _http(request: Request, exc: HTTPException) -> Response[dict[str, object]]:
    status = exc.status_code
    if status == 413:
        handler = request.scope.get("route_handler")
        limit = (
            handler.resolve_request_max_body_size()
            if isinstance(handler, HTTPRouteHandler)
            else None
        ) or request.app.state.backend.settings.max_body
        return error_response(
            413, f"The request body is over the {limit:,}-byte limit; send smaller requests."
        )
    if isinstance(exc, ValidationException):
        return error_response(400, _validation_detail(exc))
    if status == 404:
        return error_response(
            404, f"There is no endpoint {request.method} {request.url.path}; see /schema."
        )
    if status == 405:
        return error_response(405, f"{request.url.path} does not accept {request.method}.")
    detail = str(exc.detail)
    decoding = _DECODE_ERROR.fullmatch(detail) if status == 400 else None
    if decoding is not None:
        # msgspec reading the body before it knows the fields (a number beyond a float's or
        # a 64-bit integer's range): "at `$[...]`" pointed nowhere a user could look.
        what, where = decoding["what"].rstrip("."), decoding["where"]
        # ("[...]": a key msgspec did not keep, so the path leads nowhere a user can look)
        place = "in one of its values" if "[...]" in where else f"at `{where}`"
        return error_response(
            400,
            f"The request body is not valid: {what[:1].lower()}{what[1:]} ({place});"
            " check the API schema at /schema.",
        )
    return error_response(status, detail)


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if isinstance(item, dict):
            where = item.get("key")
            message = str(item.get("message", "")).rstrip(".")
            parts.append(f"{message} (in {where})" if where and where != "body" else message)
    if not parts:
        return "The request is malformed; check the API schema at /schema."
    return f"Invalid request: {'; '.join(parts)}."


def _while_decoding(exc: BaseException) -> bool:
    """Whether the error was raised decoding a request body (and is no bug of ours)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.endswith(DECODER_FILE)


def _internal(request: Request, exc: Exception) -> Response[dict[str, object]]:
    known = storage_error(exc)
    if known is not None:
        return _domain(request, known)
    if isinstance(exc, OverflowError):  # an id in the path beyond SQLite's 64-bit integers
        return error_response(404, f"Nothing at {request.url.path}: no id is that large.")
    if isinstance(exc, RecursionError) and _while_decoding(exc):
        # Litestar's JSON decoding of a body nested ~1,000 deep (`[[[[…`, 2 KB, anyone's
        # login) ran out of stack: a stranger filled the log with tracebacks. /api/live
        # bounds nesting itself (MAX_DEPTH); no other body has any reason to nest.
        return error_response(
            400, "The request body is nested too deeply; send a JSON body as the API schema shows."
        )
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "The server hit an unexpected error; the server log has the details.",
    )


EXCEPTION_HANDLERS = {DomainError: _domain, HTTPException: _http, Exception: _internal}

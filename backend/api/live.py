"""``POST /api/live``: the Studio live-metrics endpoint DVCLive and DVC post to.

This is the hottest path of the server (two posts per training step per run), so it is a
plain ASGI handler: it reads the body, validates it with msgspec, hands one job to the
writer and answers once that job is committed, without the per-request dependency
injection and signature parsing of a regular handler. Errors are still mapped in
``backend.errors``; the answers are the same as any other endpoint's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import msgspec
from litestar import asgi
from litestar.types import HTTPResponseStartEvent, HTTPScope, Receive, Scope, Send

from backend import metrics
from backend.api.guards import access_token
from backend.context import Backend
from backend.db.writer import storage_error
from backend.errors import domain_error_body, retry_after_header
from backend.services import ingest
from backend.services.errors import DomainError, InvalidInput, TooLarge
from shared.api import LiveAccepted

log = logging.getLogger("livestudio")

_JSON = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]
PARSE_IN_THREAD = 1 << 20
_encode = msgspec.json.encode


async def _read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    if declared is not None and declared > limit:
        raise TooLarge(f"The request body is over the {limit:,}-byte limit; send smaller requests.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        chunk = cast(bytes, message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise TooLarge(
                f"The request body is over the {limit:,}-byte limit; send smaller requests."
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: bytes, retry_after: float | None = None, *, post: bool = True
) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    headers.extend(
        (k.lower().encode(), v.encode()) for k, v in retry_after_header(retry_after).items()
    )
    if post:
        metrics.count_post(status)
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _parse(body: bytes) -> ingest.ParsedEvent:
    # Decoding megabytes of plot rows takes a while. In a thread, the event loop answers
    # others while the rows are checked (Python code hands the GIL over every few ms),
    # but not during msgspec's decode, one C call that holds it: a 28 MB post of 425,000
    # rows holds every request for ~0.3-0.7 s (measured). Rare (DVCLive sends a run's
    # history in one post only when resuming); bounded by the 30 MB body limit.
    if len(body) > PARSE_IN_THREAD:
        return await asyncio.to_thread(ingest.parse, body)
    return ingest.parse(body)


async def _check(scope: Scope, send: Send, backend: Backend) -> None:
    """``GET /api/live``: whether the token may post live events (200), else why not, as
    a post would be told: ``livestudio run`` asks before it starts hours of training."""
    authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    try:
        token = access_token(authorization.decode("latin-1") if authorization else None)
        await ingest.check_token(backend.reader, token)
    except DomainError as exc:
        await _answer(send, *domain_error_body(exc), exc.retry_after, post=False)
        return
    except Exception as exc:
        known = storage_error(exc)
        if known is None:
            raise
        await _answer(send, *domain_error_body(known), known.retry_after, post=False)
        return
    # The server's time, to the microsecond: ``livestudio run`` finishes only a run that
    # posted after it (the ``Date`` header's whole seconds mixed up runs ~2 s apart).
    await _answer(send, 200, b'{"status":"ok","time":%.6f}' % backend.clock(), post=False)


@asgi("/api/live", copy_scope=False)
async def live(scope: Scope, receive: Receive, send: Send) -> None:
    """Ingest one live event; answers 200 only once the event is committed."""
    backend: Backend = scope["app"].state.backend
    method = cast("HTTPScope", scope)["method"]
    if method == "GET":
        await _check(scope, send, backend)
        return
    if method != "POST":
        status, body = domain_error_body(DomainError("Send live events with POST."), 405)
        await _answer(send, status, body)
        return
    authorization = declared = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            declared = int(value)
    try:
        token = access_token(authorization)
        if declared is None or declared > PARSE_IN_THREAD:
            # A stranger's 30 MB must not cost a second of decoding before its 401; a body
            # of unknown length (chunked: no client of ours sends one) may be as large.
            await ingest.check_token(backend.reader, token)
        body = await _read_body(receive, backend.settings.max_body, declared)
        with backend.writer.post() as post:
            try:
                parsed = await _parse(body)
            except (InvalidInput, TooLarge):
                # The writer checks the token of a valid post; a stranger's invalid one
                # is refused as a stranger's (401), not told what is wrong with it.
                await ingest.check_token(backend.reader, token)
                raise
            first, *rest = parsed.slices() if parsed.series else (parsed,)
            experiment_id = await backend.writer.submit(
                ingest.ingest_job(token, first, backend.clock), post
            )
            for part in rest:
                await backend.writer.submit(ingest.ingest_job(token, part, backend.clock))
    except DomainError as exc:
        await _answer(send, *domain_error_body(exc), exc.retry_after)
        return
    except ConnectionError:
        return
    except Exception as exc:
        known = storage_error(exc)  # the database went away while checking the token
        if known is not None:
            await _answer(send, *domain_error_body(known), known.retry_after)
            return
        log.exception("live event failed")
        status, body = domain_error_body(
            DomainError("The server hit an unexpected error; the server log has the details."), 500
        )
        await _answer(send, status, body)
        return
    await _answer(send, 200, _encode(LiveAccepted(status="ok", experiment_id=experiment_id)))

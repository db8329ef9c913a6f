"""The yardsticks: ``/api/live`` on the same stack, doing only part of livestudio's work.

``raw`` (the ceiling): a raw ASGI route on Litestar + uvicorn, exactly like livestudio's
``/api/live`` — the same body reading, the same msgspec decoding of the live protocol, the
same JSON answer — without authentication and storage.

Two more take livestudio's own code one step further each, so the table shows where a
post's time goes between the ceiling and livestudio:

``validate``: ``raw`` plus livestudio's whole validation of a post (the token header, the
bounds on names, nesting, numbers and plot rows, the series pulled out), still no storage.
``handoff``: ``validate`` plus the hand-off to livestudio's writer — group commit by posts
in flight, a real ``BEGIN IMMEDIATE``/``COMMIT`` on a real SQLite file — with a job that
writes nothing.

``handler``: a regular Litestar handler (dependency injection, signature parsing, response
serialisation) that decodes the body, the previous yardstick, kept as a second reference.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import uvicorn
from litestar import Litestar, Request, asgi, post
from litestar.types import Receive, Scope, Send

from backend.api.live import _answer, _read_body
from backend.db.writer import WriteContext, Writer, cache_safe
from backend.services import ingest
from backend.services.accounts import parse_authorization
from cli.http_protocol import BoundedHttpToolsProtocol
from shared.api import LiveAccepted
from shared.live import decode_live_event

MAX_BODY = 30_000_000
_OK = msgspec.json.encode(LiveAccepted(status="ok", experiment_id=1))
_writer: Writer | None = None


@asgi("/api/live", copy_scope=False)
async def raw_live(scope: Scope, receive: Receive, send: Send) -> None:
    """Read and decode the body as livestudio does, and answer as it does."""
    decode_live_event(await _read_body(receive, MAX_BODY, None))
    await _answer(send, 200, _OK)


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


@asgi("/api/live", copy_scope=False)
async def validate_live(scope: Scope, receive: Receive, send: Send) -> None:
    """Read, decode and validate the body as livestudio does; store nothing."""
    parse_authorization(_authorization(scope))
    ingest.parse(await _read_body(receive, MAX_BODY, None))
    await _answer(send, 200, _OK)


@cache_safe
def _nothing(ctx: WriteContext) -> int:
    return 1


@asgi("/api/live", copy_scope=False)
async def handoff_live(scope: Scope, receive: Receive, send: Send) -> None:
    """Validate as livestudio does, then commit a job that writes nothing through its writer."""
    assert _writer is not None
    parse_authorization(_authorization(scope))
    body = await _read_body(receive, MAX_BODY, None)
    with _writer.post() as live:
        ingest.parse(body)
        await _writer.submit(_nothing, live)
    await _answer(send, 200, _OK)


@asynccontextmanager
async def _with_writer(_: Litestar) -> AsyncIterator[None]:
    global _writer
    _writer = Writer(Path(tempfile.mkdtemp(prefix="livestudio-bench-")) / "handoff.db", len)
    await _writer.start()
    try:
        yield
    finally:
        await _writer.stop()


@post("/api/live", status_code=200)
async def handler_live(request: Request) -> dict[str, str]:
    """Parse the JSON body in a regular handler and answer ok."""
    msgspec.json.decode(await request.body())
    return {"status": "ok"}


ROUTES = {"raw": raw_live, "validate": validate_live, "handoff": handoff_live}


def main() -> None:
    """``python -m bench.bare PORT [raw|validate|handoff|handler]``."""
    kind = sys.argv[2] if len(sys.argv) > 2 else "raw"
    app = Litestar(
        [ROUTES.get(kind, handler_live)],
        request_max_body_size=MAX_BODY,
        logging_config=None,
        lifespan=[_with_writer] if kind == "handoff" else [],
    )
    # The same uvicorn settings as `livestudio serve` (cli/serve.py).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        timeout_keep_alive=75,
        http=BoundedHttpToolsProtocol,
    )


if __name__ == "__main__":
    main()

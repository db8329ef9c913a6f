"""The yardsticks: ``/api/live`` on the same stack, doing only the unavoidable work.

``raw`` (the ceiling): a raw ASGI route on Litestar + uvicorn, exactly like livestudio's
``/api/live`` — the same body reading, the same msgspec decoding of the live protocol, the
same JSON answer — without authentication and storage. ``handler``: a regular Litestar
handler (dependency injection, signature parsing, response serialisation) that decodes the
body, the previous yardstick, kept as a second reference.
"""

from __future__ import annotations

import sys

import msgspec
import uvicorn
from litestar import Litestar, Request, asgi, post
from litestar.types import Receive, Scope, Send

from backend.api.live import _answer, _read_body
from shared.api import LiveAccepted
from shared.live import decode_live_event

MAX_BODY = 30_000_000
_OK = msgspec.json.encode(LiveAccepted(status="ok", experiment_id=1))


@asgi("/api/live", copy_scope=False)
async def raw_live(scope: Scope, receive: Receive, send: Send) -> None:
    """Read and decode the body as livestudio does, and answer as it does."""
    decode_live_event(await _read_body(receive, MAX_BODY, None))
    await _answer(send, 200, _OK)


@post("/api/live", status_code=200)
async def handler_live(request: Request) -> dict[str, str]:
    """Parse the JSON body in a regular handler and answer ok."""
    msgspec.json.decode(await request.body())
    return {"status": "ok"}


def main() -> None:
    """``python -m bench.bare PORT [raw|handler]``."""
    kind = sys.argv[2] if len(sys.argv) > 2 else "raw"
    route = raw_live if kind == "raw" else handler_live
    app = Litestar([route], request_max_body_size=MAX_BODY, logging_config=None)
    # The same uvicorn settings as `livestudio serve` (cli/serve.py).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=False,
        proxy_headers=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()

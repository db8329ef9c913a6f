"""The yardstick: a bare Litestar handler that only parses the body, served like livestudio."""

from __future__ import annotations

import sys

import msgspec
import uvicorn
from litestar import Litestar, Request, post


@post("/api/live", status_code=200)
async def live(request: Request) -> dict[str, str]:
    """Parse the JSON body and answer ok; no auth, no storage."""
    msgspec.json.decode(await request.body())
    return {"status": "ok"}


def main() -> None:
    """``python -m bench.bare PORT``."""
    app = Litestar([live], request_max_body_size=30_000_000)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")


if __name__ == "__main__":
    main()

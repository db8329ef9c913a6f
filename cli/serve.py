"""Running the server with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from backend.app import create_app
from backend.settings import Settings


def uvicorn_config(settings: Settings, log_level: str = "info") -> uvicorn.Config:
    """The uvicorn settings we run with (also used in-process by the demo)."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        # Event streams never end on their own; don't wait long for them on shutdown.
        timeout_graceful_shutdown=2,
        log_level=log_level,
    )


def serve(settings: Settings) -> None:
    """Serve until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    print(f"livestudio: serving on http://{settings.host}:{settings.port} (database {settings.db})")
    uvicorn.Server(uvicorn_config(settings)).run()

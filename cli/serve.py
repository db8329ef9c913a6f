"""Running the server with uvicorn."""

from __future__ import annotations

import logging
import socket
from types import FrameType

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
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        # Event streams never end on their own; don't wait long for them on shutdown.
        timeout_graceful_shutdown=2,
        log_level=log_level,
    )


def check_port(host: str, port: int) -> None:
    """Refuse early, with a sentence, when the address is taken or invalid."""
    from cli.admin import CliError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = str(exc.strerror or exc).split(" (while attempting")[0]
        raise CliError(
            f"Cannot listen on {host}:{port}: {reason}; choose another --host or --port."
        ) from None


def serve(settings: Settings) -> None:
    """Serve until Ctrl-C."""
    check_port(settings.host, settings.port)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # asyncssh logs every connection attempt at INFO: anyone could grow the log at will.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    print(f"livestudio: serving on http://{settings.host}:{settings.port} (database {settings.db})")
    if settings.ssh_port:
        from backend.ssh.server import fingerprint

        check_port(settings.host, settings.ssh_port)
        print(
            f"livestudio: the TUI over SSH on port {settings.ssh_port};"
            f" host key {fingerprint(settings.db)}",
            flush=True,
        )
    _Server(uvicorn_config(settings)).run()


class _Server(uvicorn.Server):
    """uvicorn's server, ending the event streams as soon as it is asked to stop.

    Streams never end on their own: without this, Ctrl-C (or a deploy's SIGTERM) waits for
    the graceful-shutdown timeout with every stream client still connected.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        backend = getattr(getattr(self.config.app, "state", None), "backend", None)
        if backend is not None:
            backend.streams.end_all_threadsafe()
        super().handle_exit(sig, frame)

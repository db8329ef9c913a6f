"""Running the server with uvicorn."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from litestar import Litestar

from backend.app import create_app
from backend.db.connection import describe
from backend.log_limits import limit_repeats
from backend.settings import Settings, url_host
from cli.http_protocol import BoundedHttpToolsProtocol, configure

KEEP_ALIVE_SECONDS = 75
"""How long an idle kept-alive connection stays open (nginx's default)."""


def _uvicorn_options(settings: Settings, log_level: str) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "access_log": settings.access_log,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        # Event streams never end on their own; don't wait long for them on shutdown.
        "timeout_graceful_shutdown": 2,
        # `dvc studio login` polls every 5 s on one kept-alive connection: with uvicorn's
        # 5 s default, the server sometimes closed it just as DVC sent its next poll, and
        # DVC (which does not retry a POST) failed with "Connection reset by peer".
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "log_level": log_level,
        # httptools with bounds on request heads and on how slowly a request may arrive
        # (it sets none; see cli.http_protocol).
        "http": BoundedHttpToolsProtocol,
        # No WebSocket route: an `Upgrade: websocket` request is an ordinary one. (uvicorn
        # upgraded it anyway, handing the connection to a protocol that never told ours
        # it closed: 256 such requests locked their address out for good.)
        "ws": "none",
    }


def uvicorn_config(settings: Settings, log_level: str = "info") -> uvicorn.Config:
    """The uvicorn settings we run with (also used in-process by the demo)."""
    configure(settings)
    return uvicorn.Config(create_app(settings), **_uvicorn_options(settings, log_level))


def worker_app() -> Litestar:
    """One of ``serve --workers N``'s processes: its app, configured from ``LIVESTUDIO_*``
    variables (``Settings.to_env``), as uvicorn starts each process from an import string."""
    settings = Settings.from_env()
    configure(settings)
    _configure_logging()  # a spawned process starts without the parent's
    app = create_app(settings)
    _end_streams_on_exit(app)
    return app


def _end_streams_on_exit(app: Litestar) -> None:
    """In a worker process, end the event streams as soon as it is asked to stop.

    uvicorn's supervisor starts each worker with its own server class, not ``_Server``;
    this runs while that server loads the app, after it took SIGINT and SIGTERM, so it
    wraps its handlers. Without it a stop waited out the graceful-shutdown timeout and
    then cancelled every open stream with a traceback in the log.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signals are the main thread's (a test importing the app elsewhere)
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def ending(
            signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            backend = getattr(app.state, "backend", None)
            if backend is not None:
                backend.streams.end_all_threadsafe()
            previous(signum, frame)

        signal.signal(sig, ending)


def check_port(host: str, port: int, choose: str = "another --host or --port") -> None:
    """Refuse early, with a sentence, when the address is taken or invalid."""
    from cli.admin import CliError

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET  # (an IPv6 literal)
        with socket.create_server((host, port), family=family):
            pass
    except (OSError, OverflowError) as exc:  # taken, unknown host; a port out of range
        reason = str(getattr(exc, "strerror", None) or exc).split(" (while attempting")[0]
        raise CliError(
            f"Cannot listen on {host}:{port}: {reason.rstrip('.')}; choose {choose}."
        ) from None


def check_redis(url: str) -> None:
    """Refuse a Redis URL that can never work (a database index Redis does not have, a
    wrong password): the server ran on, degraded for good, with a warning in its log.
    Redis not answering is only said: it may come later, and streams catch up meanwhile."""
    import redis

    from cli.admin import CliError

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:
        where = url.split("@")[-1].split("://")[-1]  # (no password shown)
        raise CliError(
            f"Redis at {where} refuses this server: {exc}; check LIVESTUDIO_REDIS_URL"
            " (redis://[:PASSWORD@]HOST:PORT/DB, DB from 0 to 15 by default)."
        ) from None
    except (redis.RedisError, OSError) as exc:
        # A plain Redis asked for TLS never answers the handshake: it looked like one
        # that is not up yet, for good.
        hint = " (is it redis://? rediss:// is Redis over TLS)" if url.startswith("rediss:") else ""
        print(
            f"livestudio: Redis does not answer yet ({exc}){hint}; live events reach other"
            " processes once it does, and streams catch up from the database meanwhile.",
            flush=True,
        )
    finally:
        client.close()


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # asyncssh logs every connection attempt at INFO: anyone could grow the log at will.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    limit_repeats()


def serve(settings: Settings, workers: int = 1) -> None:
    """Serve until Ctrl-C (``workers`` processes on one port: PostgreSQL and Redis)."""
    check_port(settings.host, settings.port)
    if workers == 1 and settings.ssh_port:  # (several refused by the command line)
        check_port(settings.host, settings.ssh_port, "another --ssh-port")
    if settings.redis_url:
        check_redis(settings.redis_url)
    _configure_logging()
    where = describe(settings.database)
    url = f"http://{url_host(settings.host)}:{settings.port}"
    print(f"livestudio: serving on {url} (database {where})")
    if settings.engine == "postgresql" and not settings.redis_url:
        print(
            "livestudio: no --redis-url: live events reach only this process's streams"
            " (others catch up every heartbeat); give Redis to run several processes.",
            flush=True,
        )
    _raise_open_files_limit()  # (before --workers: its processes inherit it)
    if workers > 1:
        _serve_processes(settings, workers)
        return
    if settings.ssh_port:
        from backend.ssh.server import fingerprint

        print(
            f"livestudio: the TUI over SSH on port {settings.ssh_port};"
            f" host key {fingerprint(settings.db)}",
            flush=True,
        )
    _Server(uvicorn_config(settings)).run()


def _raise_open_files_limit() -> None:
    """Open files up to the hard limit: each connection is one, and a soft limit of 1,024
    (many systems' default) let a thousand idle clients make the server refuse everyone."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


METRICS_PREFIX = "livestudio-metrics-"


def _forget_dead_metrics_dirs() -> None:
    """Remove the figures folders of ``serve --workers`` parents that are gone (killed
    with ``kill -9``, they could not remove their own)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = folder.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _serve_processes(settings: Settings, workers: int) -> None:
    """Run ``workers`` server processes on one port, restarted by uvicorn if one dies."""
    os.environ.update(settings.to_env())
    # Every process writes its figures here; /metrics in any of them adds them all up.
    _forget_dead_metrics_dirs()
    metrics_dir = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    print(f"livestudio: {workers} processes, events shared through Redis", flush=True)
    try:
        uvicorn.run(
            "cli.serve:worker_app",
            factory=True,
            workers=workers,
            **_uvicorn_options(settings, "info"),
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


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

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            super().run(sockets)
        finally:
            if self.force_exit:
                # A second Ctrl-C skips the application's shutdown: the database threads
                # it would have closed kept the process alive for good. Every answered
                # post is committed already; nothing is lost by going now.
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(128 + signal.SIGINT)

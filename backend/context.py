"""What request handlers get injected: the running backend and the authenticated user."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency

from backend.db.connection import Reader
from backend.db.repository import Principal
from backend.db.writer import Writer
from backend.services import access, accounts
from backend.services.broadcast import Streams
from backend.services.errors import NotAuthenticated
from backend.services.throttle import LoginThrottle, SlidingWindow
from backend.settings import Settings


@dataclass
class Backend:
    """The live resources of one server process."""

    settings: Settings
    writer: Writer
    reader: Reader
    channels: ChannelsPlugin
    clock: Callable[[], float] = field(default=time.time)
    logins: LoginThrottle = field(default_factory=LoginThrottle)
    """Failed password tries, per address and per user."""
    device_starts: SlidingWindow = field(default_factory=lambda: SlidingWindow(30, 600.0))
    """Anonymous ``dvc studio login`` requests per client address."""
    streams: Streams = field(default_factory=Streams)
    """The open event streams (ended at once when the server shuts down)."""


def provide_backend(state: State) -> Backend:
    """Dependency: the backend of this app."""
    return state.backend


async def _principal(request: Request, backend: Backend) -> Principal:
    credential = accounts.parse_authorization(request.headers.get("authorization"))
    if credential is None:
        raise NotAuthenticated(
            "Log in first: send a session or access token as 'Authorization: Bearer <token>'."
        )
    return await accounts.authenticate(
        backend.reader, credential, backend.settings.session_days, backend.clock()
    )


async def provide_reader(request: Request, backend: NamedDependency[Backend]) -> Principal:
    """Dependency: a session, or an access token allowed to read experiments."""
    return access.require_reader(await _principal(request, backend))


async def provide_session_user(request: Request, backend: NamedDependency[Backend]) -> Principal:
    """Dependency: the user of a login session (access tokens are refused with 403)."""
    return access.require_session(await _principal(request, backend))

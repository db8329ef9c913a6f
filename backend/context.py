"""What request handlers get injected: the running backend and the authenticated user."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosqlite
from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.di import NamedDependency

from backend.db.repository import Principal
from backend.db.writer import Writer
from backend.services import accounts
from backend.services.errors import NotAuthenticated
from backend.settings import Settings


@dataclass
class Backend:
    """The live resources of one server process."""

    settings: Settings
    writer: Writer
    reader: aiosqlite.Connection
    channels: ChannelsPlugin
    clock: Callable[[], float] = field(default=time.time)


def provide_backend(state: State) -> Backend:
    """Dependency: the backend of this app."""
    return state.backend  # type: ignore[no-any-return]


async def provide_principal(request: Request, backend: NamedDependency[Backend]) -> Principal:
    """Dependency: the user behind the session or access token of the request."""
    credential = accounts.parse_authorization(request.headers.get("authorization"))
    if credential is None:
        raise NotAuthenticated(
            "Log in first: send a session or access token as 'Authorization: Bearer <token>'."
        )
    return await accounts.authenticate(
        backend.reader, credential, backend.settings.session_days, backend.clock()
    )

"""Logging in and out with a username and password (sessions)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from backend.api.deps import BackendDep, UserDep
from backend.services import accounts
from shared.api import LoginRequest, LoginResponse


class AuthController(Controller):
    """Sessions for the TUI and scripts."""

    path = "/api/auth"

    @post("/login", status_code=200)
    async def login(self, data: JSONBody[LoginRequest], backend: BackendDep) -> LoginResponse:
        """Exchange a username and password for a session token."""
        user = await accounts.login(backend.reader, data.username, data.password)
        session = await backend.writer.submit(accounts.start_session_job(user.id))
        return LoginResponse(session_token=session, username=user.username)

    @post("/logout", status_code=204, dependencies=None)
    async def logout(self, backend: BackendDep, user: UserDep) -> None:
        """End the current session (access tokens are not affected)."""
        if user.session_id is not None:
            await backend.writer.submit(accounts.end_session_job(user.session_id))

"""Logging in and out with a username and password (sessions)."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.params import JSONBody

from backend.api.deps import SESSION_ONLY, BackendDep, UserDep
from backend.services import accounts
from shared.api import LoginRequest, LoginResponse


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn applies trusted proxies' X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    """Sessions for the TUI and scripts."""

    path = "/api/auth"

    @post("/login", status_code=200)
    async def login(
        self, request: Request, data: JSONBody[LoginRequest], backend: BackendDep
    ) -> LoginResponse:
        """Exchange a username and password for a session token (throttled on failures)."""
        address = client_address(request)
        await accounts.admit_password_try(
            backend.logins, backend.reader, data.username, address, backend.clock()
        )
        user = await accounts.login(backend.reader, data.username, data.password)
        backend.logins.succeeded(data.username, address, backend.clock())
        session = await backend.writer.submit(
            accounts.start_session_job(user.id, address, backend.clock(), user.password_hash)
        )
        return LoginResponse(session_token=session, username=user.username)

    @post("/logout", status_code=204, dependencies=SESSION_ONLY)
    async def logout(self, backend: BackendDep, user: UserDep) -> None:
        """End the current session (access tokens are not affected)."""
        if user.session_id is not None:
            await backend.writer.submit(accounts.end_session_job(user.user_id, user.session_id))

"""Device login endpoints used by ``dvc studio login``, and the page it links to."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromQuery, JSONBody

from backend.api.auth import client_address
from backend.api.deps import SESSION_ONLY, BackendDep, UserDep
from backend.errors import error_response
from backend.services import device_login
from backend.services.errors import RateLimited
from backend.services.throttle import client_key
from shared.api import DeviceCode, PendingLogin


class DeviceLoginRequest(msgspec.Struct, frozen=True):
    """What DVC sends to start (extra fields such as team options are ignored)."""

    client_name: str = "client"
    token_name: str | None = None
    scopes: list[str] | None = None


class DeviceLoginStarted(msgspec.Struct, frozen=True):
    """The codes and where to go with them."""

    device_code: str
    user_code: str
    verification_uri: str
    token_uri: str
    token_name: str
    expires_in: int


class TokenRequest(msgspec.Struct, frozen=True):
    """A poll: ``{"code": device_code}``."""

    code: str


class AccessToken(msgspec.Struct, frozen=True):
    """The new client token."""

    access_token: str


class Approved(msgspec.Struct, frozen=True):
    """The approved request's token name."""

    token_name: str


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class DeviceController(Controller):
    """``/api/device-login``, ``/api/token`` and ``/device``."""

    @post("/api/device-login", status_code=200)
    async def start(
        self, request: Request, data: JSONBody[DeviceLoginRequest], backend: BackendDep
    ) -> DeviceLoginStarted:
        """Start a device login; poll ``token_uri`` until the user approves the code."""
        address = client_key(client_address(request))  # an IPv6 client by its /64
        wait = backend.device_starts.wait(address, backend.clock())
        if wait > 0:
            raise RateLimited(
                "Too many device logins started from your address; try again later.",
                retry_after=wait,
            )
        backend.device_starts.add(address, backend.clock())
        started = await backend.writer.submit(
            device_login.start_job(
                data.client_name,
                data.token_name,
                data.scopes,
                backend.clock(),
                backend.settings.device_code_ttl,
            )
        )
        base = _base(request)
        return DeviceLoginStarted(
            device_code=started.device_code,
            user_code=started.user_code,
            verification_uri=f"{base}/device",
            token_uri=f"{base}/api/token",
            token_name=started.token_name,
            expires_in=started.expires_in,
        )

    @post("/api/token", status_code=200)
    async def poll(self, data: JSONBody[TokenRequest], backend: BackendDep) -> object:
        """400 ``authorization_pending`` / ``authorization_expired``, or the token once."""
        answer = await backend.writer.submit(device_login.poll_job(data.code, backend.clock()))
        if answer in (device_login.PENDING, device_login.EXPIRED):
            return error_response(400, answer)
        return AccessToken(access_token=answer)

    @post("/api/device-login/lookup", status_code=200, dependencies=SESSION_ONLY)
    async def lookup(
        self, data: JSONBody[DeviceCode], backend: BackendDep, user: UserDep
    ) -> PendingLogin:
        """What is asking to log in with this code: client, token name, scopes, age."""
        login = await device_login.lookup(backend.writer, user, data.user_code, backend.clock())
        return PendingLogin(
            user_code=login.user_code,
            client_name=login.client_name,
            token_name=login.token_name,
            scopes=sorted(login.scopes),
            created_at=datetime.fromtimestamp(login.created_at, UTC),
            expires_at=datetime.fromtimestamp(login.expires_at, UTC),
        )

    @post("/api/device-login/approve", status_code=200, dependencies=SESSION_ONLY)
    async def approve(
        self, data: JSONBody[DeviceCode], backend: BackendDep, user: UserDep
    ) -> Approved:
        """Approve the request whose code the user's own ``dvc studio login`` printed."""
        name = await device_login.approve(backend.writer, user, data.user_code, backend.clock())
        return Approved(token_name=name)

    @get("/device", media_type=MediaType.HTML, include_in_schema=False)
    async def page(self, request: Request, code: FromQuery[str | None] = None) -> str:
        """Tells the user how to approve the code."""
        shown = html.escape(device_login.normalise_code(code or "")) or "the code DVC printed"
        server = html.escape(_base(request))
        return f"""<!doctype html><html><head><meta charset="utf-8">
<title>livestudio device login</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;line-height:1.5}}
code,kbd{{background:#eee;padding:.1em .3em;border-radius:3px}}
.code{{font-size:2em;letter-spacing:.1em}}</style>
</head><body><h1>Approve a device login</h1>
<p>A client (such as <code>dvc studio login</code>) is waiting for approval of</p>
<p class="code"><strong>{shown}</strong></p>
<p>Approve it while logged in to livestudio, in either way:</p>
<ul><li>in the terminal UI: press <kbd>t</kbd> for the profile screen, press <kbd>a</kbd>,
type the code, check the client and scopes shown, and confirm;</li>
<li>or in a shell: <code>livestudio approve {shown} --server {server}</code>.</li></ul>
<p>The client then receives a new access token, which you can revoke on its own in the
profile screen. Codes expire after a few minutes and work once.</p></body></html>"""

"""Typed access to the livestudio HTTP API and its event streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec
from httpx_sse import aconnect_sse

from shared.api import (
    TUI_CONNECTIONS,
    ExperimentDetail,
    ExperimentRow,
    Invitation,
    LoginResponse,
    Members,
    NewToken,
    PendingLogin,
    ProjectRow,
    SshKeyInfo,
    UserInfo,
)
from shared.text import printable
from shared.watches import AlertInfo, Baseline, WatchCreate, WatchInfo
from tui import sanitize

T = TypeVar("T")


class ApiError(Exception):
    """A refused or failed request, with the server's one-sentence reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SessionExpired(ApiError):
    """The session is no longer valid: the user must log in again."""


class StreamGone(ApiError):
    """The stream's project no longer exists for this user (deleted, or they were removed)."""


RETRYABLE = frozenset({408, 429})
"""Client-error statuses that are worth retrying, like every 5xx."""


@dataclass(frozen=True)
class StreamEvent:
    """One event from the stream."""

    kind: str
    raw: str
    id: int | None

    def decode(self, kind: type[T] | None = None) -> Any:
        """The event's JSON data, as ``kind`` when given (strings made printable)."""
        return sanitize.decode(self.raw, kind)


@dataclass(frozen=True)
class StreamState:
    """The stream connected, or lost its connection and will retry after ``retry_in``.

    ``retry_in`` below zero means it stopped for good (``reason`` says why).
    """

    connected: bool
    retry_in: float = 0.0
    reason: str = ""


class Api:
    """The REST client; one per server and session."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self._transport = transport
        self._client = self._make_client()

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.AsyncClient(
            base_url=self.server,
            headers=headers,
            timeout=15,
            transport=self._transport,
            limits=httpx.Limits(max_connections=TUI_CONNECTIONS),
        )

    async def close(self) -> None:
        """Close connections."""
        await self._client.aclose()

    def use_token(self, token: str | None) -> None:
        """Switch to another session token."""
        self.token = token
        old = self._client
        self._client = self._make_client()
        asyncio.get_event_loop().create_task(old.aclose())

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"Cannot reach {self.server}: {plain_reason(exc)}.") from None
        if response.status_code >= 400:
            error = SessionExpired if response.status_code == 401 and self.token else ApiError
            raise error(response.status_code, detail_of(response))
        return response

    async def _get(self, path: str, kind: type[T], **params: Any) -> T:
        response = await self._request("GET", path, params=params or None)
        return sanitize.decode(response.content, kind)

    async def login(self, username: str, password: str) -> LoginResponse:
        """Log in; the client then uses the new session."""
        response = await self._request(
            "POST", "/api/auth/login", json={"username": username, "password": password}
        )
        login = msgspec.json.decode(response.content, type=LoginResponse)
        self.use_token(login.session_token)
        return login

    async def projects(self) -> list[ProjectRow]:
        """Projects with counts."""
        return await self._get("/api/projects", list[ProjectRow])

    async def experiments(self, project_id: int, status: str | None = None) -> list[ExperimentRow]:
        """Experiment rows of a project (only those of one status, if given)."""
        path = f"/api/projects/{project_id}/experiments"
        if status is None:
            return await self._get(path, list[ExperimentRow])
        return await self._get(path, list[ExperimentRow], status=status)

    async def experiment(self, experiment_id: int) -> ExperimentDetail:
        """One experiment with series names and images."""
        return await self._get(f"/api/experiments/{experiment_id}", ExperimentDetail)

    async def series(
        self, experiment_id: int, names: list[str] | None = None, max_points: int | None = None
    ) -> dict[str, list[tuple[int, float | str]]]:
        """Series points, downsampled to ``max_points`` when given."""
        return await self._series(
            experiment_id, names, dict[str, list[tuple[int, float | str]]], max_points=max_points
        )

    async def timed_series(
        self, experiment_id: int, names: list[str] | None = None, max_points: int | None = None
    ) -> dict[str, list[tuple[int, float | str, float | None]]]:
        """Series points with the time each arrived: ``(step, value, arrived_at)``."""
        return await self._series(
            experiment_id,
            names,
            dict[str, list[tuple[int, float | str, float | None]]],
            max_points=max_points,
            times="true",
        )

    async def series_at(
        self, experiment_id: int, names: list[str], step: int
    ) -> dict[str, list[tuple[int, float | str]]]:
        """Each series' exact point at ``step``, or the last before it (``[]``: none)."""
        return await self._series(
            experiment_id, names, dict[str, list[tuple[int, float | str]]], at=step
        )

    async def _series(
        self, experiment_id: int, names: list[str] | None, kind: type[T], **params: Any
    ) -> T:
        """``names`` go in the URL: a few at a time, comma-separated, and one holding a
        comma on its own (``name=``; in the list, it would read as two)."""
        path = f"/api/experiments/{experiment_id}/series"
        params = {k: v for k, v in params.items() if v is not None}
        if names is None:
            return await self._get(path, kind, **params)
        names = [n for n in names if n]  # (an empty name would read as none given: all)
        merged: dict[str, Any] = {}
        for batch in _batches(names):
            query = dict(params)
            plain = [n for n in batch if "," not in n]
            if plain:
                query["names"] = ",".join(plain)
            if len(plain) < len(batch):
                query["name"] = [n for n in batch if "," in n]
            merged.update(await self._get(path, kind, **query))  # type: ignore[call-overload]
        return merged  # type: ignore[return-value]

    async def watches(self) -> list[WatchInfo]:
        """My watches."""
        return await self._get("/api/watches", list[WatchInfo])

    async def create_watch(self, watch: WatchCreate) -> WatchInfo:
        """Ask the server to watch for a condition."""
        response = await self._request(
            "POST",
            "/api/watches",
            content=msgspec.json.encode(watch),
            headers={"Content-Type": "application/json"},
        )
        return sanitize.decode(response.content, WatchInfo)

    async def update_watch(self, watch_id: int, watch: WatchCreate) -> WatchInfo:
        """Change a watch in place (it fires afresh)."""
        response = await self._request(
            "PUT",
            f"/api/watches/{watch_id}",
            content=msgspec.json.encode(watch),
            headers={"Content-Type": "application/json"},
        )
        return sanitize.decode(response.content, WatchInfo)

    async def delete_watch(self, watch_id: int) -> None:
        """Stop a watch."""
        await self._request("DELETE", f"/api/watches/{watch_id}")

    async def alerts(self, limit: int = 100) -> list[AlertInfo]:
        """My newest alerts with their webhook attempts."""
        return await self._get("/api/alerts", list[AlertInfo], limit=limit)

    async def baseline(self, project_id: int) -> int | None:
        """My baseline experiment of a project."""
        return (await self._get(f"/api/projects/{project_id}/baseline", Baseline)).experiment_id

    async def set_baseline(self, project_id: int, experiment_id: int | None) -> None:
        """Pin (or with None, unpin) my baseline of a project."""
        path = f"/api/projects/{project_id}/baseline"
        if experiment_id is None:
            await self._request("DELETE", path)
        else:
            await self._request("PUT", path, json={"experiment_id": experiment_id})

    async def image(self, experiment_id: int, path: str) -> bytes:
        """PNG bytes of an image."""
        return (
            # Encoded whole ("/" too): a name may hold "#", "?", "%" or "..".
            await self._request(
                "GET", f"/api/experiments/{experiment_id}/images/{quote(path, safe='')}"
            )
        ).content

    async def user(self) -> UserInfo:
        """The logged-in user with token metadata."""
        return await self._get("/api/user", UserInfo)

    async def generate_token(self) -> NewToken:
        """Generate or regenerate the profile token."""
        response = await self._request("POST", "/api/user/token")
        return msgspec.json.decode(response.content, type=NewToken)

    async def delete_token(self) -> None:
        """Delete the profile token."""
        await self._request("DELETE", "/api/user/token")

    async def delete_client_token(self, token_id: int) -> None:
        """Revoke a client token."""
        await self._request("DELETE", f"/api/user/tokens/{token_id}")

    async def change_password(self, current: str, new: str, reset_tokens: bool) -> None:
        """Change the password (optionally deleting every access token)."""
        await self._request(
            "POST",
            "/api/user/password",
            json={"current_password": current, "new_password": new, "reset_tokens": reset_tokens},
        )

    async def lookup_device_login(self, user_code: str) -> PendingLogin:
        """What a device login code belongs to (client, token name, scopes, age)."""
        response = await self._request(
            "POST", "/api/device-login/lookup", json={"user_code": user_code}
        )
        return sanitize.decode(response.content, PendingLogin)

    async def approve_device_login(self, user_code: str) -> str:
        """Approve a device login; returns the token name the client receives."""
        response = await self._request(
            "POST", "/api/device-login/approve", json={"user_code": user_code}
        )
        return str(sanitize.decode(response.content)["token_name"])

    async def ssh_keys(self) -> list[SshKeyInfo]:
        """The public keys that log me in over SSH."""
        return await self._get("/api/user/keys", list[SshKeyInfo])

    async def add_ssh_key(self, public_key: str) -> SshKeyInfo:
        """Register a public key (one line of a .pub file)."""
        response = await self._request("POST", "/api/user/keys", json={"public_key": public_key})
        return sanitize.decode(response.content, SshKeyInfo)

    async def remove_ssh_key(self, key_id: int) -> None:
        """Remove a key: it no longer logs in."""
        await self._request("DELETE", f"/api/user/keys/{key_id}")

    async def invitations(self) -> list[Invitation]:
        """Invitations to projects waiting for my answer."""
        return await self._get("/api/invitations", list[Invitation])

    async def accept_invitation(self, project_id: int) -> ProjectRow:
        """Join a project I was invited to."""
        response = await self._request("POST", f"/api/invitations/{project_id}/accept")
        return sanitize.decode(response.content, ProjectRow)

    async def decline_invitation(self, project_id: int) -> None:
        """Decline an invitation."""
        await self._request("DELETE", f"/api/invitations/{project_id}")

    async def members(self, project_id: int) -> Members:
        """A project's owner, members and invited users."""
        return await self._get(f"/api/projects/{project_id}/members", Members)

    async def invite(self, project_id: int, username: str) -> Members:
        """Invite a user to a project (its owner only); they join once they accept."""
        response = await self._request(
            "POST", f"/api/projects/{project_id}/members", json={"username": username}
        )
        return sanitize.decode(response.content, Members)

    async def remove_member(
        self, project_id: int, username: str, only_invitation: bool = False
    ) -> None:
        """Remove a member or withdraw an invitation (owner), or leave (my own name);
        ``only_invitation`` never removes a member (409 if they accepted meanwhile)."""
        await self._request(
            "DELETE",
            f"/api/projects/{project_id}/members/{quote(username, safe='')}",
            params={"only_invitation": "true"} if only_invitation else None,
        )

    async def delete_project(self, project_id: int) -> None:
        """Delete a project (its owner, or an admin member)."""
        await self._request("DELETE", f"/api/projects/{project_id}")

    async def delete_experiment(self, experiment_id: int) -> None:
        """Delete an experiment."""
        await self._request("DELETE", f"/api/experiments/{experiment_id}")

    async def fail_experiment(self, experiment_id: int) -> ExperimentRow:
        """Mark an experiment Failed."""
        response = await self._request("POST", f"/api/experiments/{experiment_id}/fail")
        return sanitize.decode(response.content, ExperimentRow)

    async def events(
        self, path: str, last_event_id: int | None = None, *, max_backoff: float = 10.0
    ) -> AsyncIterator[StreamEvent | StreamState]:
        """Follow an event stream forever: reconnect with backoff and ``Last-Event-ID``."""
        last = last_event_id
        backoff = 0.25
        while True:
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            try:
                async with aconnect_sse(
                    self._client,
                    "GET",
                    path,
                    headers=headers,
                    timeout=httpx.Timeout(10, read=60),
                ) as source:
                    status = source.response.status_code
                    if status == 401:
                        raise SessionExpired(401, "Your session has expired; log in again.")
                    if status >= 400:
                        await source.response.aread()
                        detail = detail_of(source.response)
                        if status == 404:
                            raise StreamGone(404, detail)
                        if status < 500 and status not in RETRYABLE:
                            raise ApiError(status, detail)
                        raise httpx.HTTPStatusError(
                            f"the server answered {status}: {detail}",
                            request=source.response.request,
                            response=source.response,
                        )
                    yield StreamState(connected=True)
                    backoff = 0.25
                    async for sse in source.aiter_sse():
                        if not sse.event or (sse.event == "message" and not sse.data):
                            continue
                        if sse.id:
                            last = int(sse.id)
                        yield StreamEvent(sse.event, sse.data, last)
                reason = "the server closed the stream"
            except (httpx.HTTPError, ValueError) as exc:
                reason = plain_reason(exc)
            yield StreamState(connected=False, retry_in=backoff, reason=reason)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


def plain_reason(exc: Exception) -> str:
    """What went wrong with a connection, in a few plain words (httpx's own text, such as
    "All connection attempts failed", says little and is long for a status bar)."""
    if isinstance(exc, httpx.ConnectError) and (
        str(exc) == "All connection attempts failed" or "Connection refused" in str(exc)
    ):  # (the first from the async client, the second the sync one's errno text)
        return "nothing answers there (is the server running, and the URL right?)"
    if isinstance(exc, httpx.ConnectError) and (
        "Name or service not known" in str(exc) or "nodename nor servname" in str(exc)
    ):
        return "no such host (check the URL)"
    text = str(exc)
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in text:
        why = text.partition("certificate verify failed: ")[2].partition(" (_ssl")[0]
        return f"its TLS certificate was refused ({why or 'not trusted'})"
    if isinstance(exc, httpx.ConnectError) and (
        "WRONG_VERSION_NUMBER" in text or "UNEXPECTED_EOF" in text or "RECORD_LAYER" in text
    ):  # what a plain-HTTP (or no TLS at all) server makes of a TLS hello
        return "no HTTPS server answers there (is it http://?)"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "the connection dropped"
    return str(exc) or type(exc).__name__


NAMES_PER_URL = 4000
"""Characters of series names asked for in one request (the URL holds them)."""


def _batches(names: list[str]) -> list[list[str]]:
    """``names`` in groups of at most ``NAMES_PER_URL`` characters (at least one each)."""
    batches: list[list[str]] = []
    batch: list[str] = []
    size = 0
    for name in names:
        if batch and size + len(name) > NAMES_PER_URL:
            batches.append(batch)
            batch, size = [], 0
        batch.append(name)
        size += len(name) + 1
    return [*batches, batch] if batch else batches


def detail_of(response: httpx.Response) -> str:
    """The server's one-sentence ``detail``, printable, or what there is instead."""
    try:
        return printable(str(response.json().get("detail")))
    except (ValueError, AttributeError):
        return printable(response.text[:200]) or response.reason_phrase

"""Calls to a running server with the session ``livestudio login`` stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from cli.admin import CliError
from shared.text import printable
from tui.client import plain_reason
from tui.settings import TuiSettings


def session_request(
    server: str | None, method: str, path: str, json: object | None = None
) -> tuple[TuiSettings, Any]:
    """Send one request with the stored session; returns the settings and the JSON answer.

    Every refusal becomes a ``CliError`` with the server's one-sentence reason.
    """
    settings = TuiSettings.from_env(server=server)
    session = settings.load_session(settings.server)
    if session is None:
        raise CliError(
            f"Log in to {settings.server} first: `livestudio login --server {settings.server}`."
        )
    try:
        response = httpx.request(
            method,
            f"{settings.server}{path}",
            json=json,
            headers={"Authorization": f"Bearer {session.token}"},
            timeout=15,
        )
    except httpx.HTTPError as exc:
        raise unreachable(settings.server, exc) from None
    if response.status_code == 401:
        raise CliError(
            "Your session has expired; log in again with"
            f" `livestudio login --server {settings.server}`."
        )
    if response.status_code >= 400:
        raise refused(settings.server, response)
    return settings, answer_of(settings.server, response) if response.content else None


def answer_of(server: str, response: httpx.Response) -> Any:
    """The JSON the server answered; a line saying so when it answered something else."""
    try:
        return response.json()
    except ValueError:
        raise CliError(
            f"{server} answered {response.status_code} without livestudio's JSON: is that the"
            " livestudio server's URL?"
        ) from None


def unreachable(server: str, exc: httpx.HTTPError) -> CliError:
    """The one line for a server that could not be reached."""
    return CliError(f"Cannot reach {server}: {first_contact(exc)}.")


def first_contact(exc: httpx.HTTPError) -> str:
    """``plain_reason``, for a command's own first request: hung up on before any answer,
    it is not livestudio there (Redis, PostgreSQL: "the connection dropped" said little)."""
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "what answers there hung up without an HTTP answer (is that livestudio's port?)"
    return plain_reason(exc)


def refused(server: str, response: httpx.Response, given_as: str = "--server") -> CliError:
    """The one line for a request the server refused: its own ``detail`` when it is
    livestudio, else what answered (a proxy, another program on that port). ``given_as``:
    where the user set ``server`` (what to correct)."""
    path = urlsplit(server).path.rstrip("/")
    if response.status_code == 404 and path and "There is no endpoint" in response.text:
        # `--server http://host:8000/api`: every call then misses (/api/api/…). (Behind
        # a proxy under a path, livestudio's own 404s about projects still come through.)
        base = server.rstrip("/").removesuffix(path)
        if given_as.startswith("--"):
            fix = f"give {given_as} {base}"
        elif given_as.isupper():  # an environment variable
            fix = f"set {given_as}={base}"
        else:
            fix = f"set {given_as} to {base}"
        return CliError(
            f"{server} has a path ({path}) where the server's address is wanted: {fix}."
        )
    try:
        # Escaped: what answers may not be livestudio, and could colour, retitle or forge
        # lines of the terminal it is printed on.
        detail = printable(str(response.json()["detail"]))
    except (ValueError, KeyError, TypeError):
        detail = (
            f"{server} answered {response.status_code} {response.reason_phrase} without"
            " livestudio's explanation: is that the livestudio server's URL?"
        )
    return CliError(detail if detail.endswith(("?", "!")) else detail.rstrip(".") + ".")

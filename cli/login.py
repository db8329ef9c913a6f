"""``livestudio login``: the login screen's work, from a shell."""

from __future__ import annotations

import sys

import httpx

from cli import prompts
from cli.admin import CliError
from cli.remote import answer_of, refused, unreachable
from tui.settings import Session, SessionNotKept, TuiSettings


def login(server: str | None, username: str | None, password_stdin: bool) -> None:
    """Ask for credentials, log in and store the session (mode 0600)."""
    settings = TuiSettings.from_env(server=server)
    try:
        settings.check_writable()
    except SessionNotKept as exc:
        raise CliError(exc.detail) from None
    if username is None:
        if not sys.stdin.isatty():
            raise CliError("No terminal to ask for a username; pass --username NAME.")
        username = input(f"Username on {settings.server}: ").strip()
    password = prompts.password_from_stdin() if password_stdin else prompts.password_from_terminal()
    try:
        response = httpx.post(
            f"{settings.server}/api/auth/login",
            json={"username": username, "password": password},
            timeout=15,
        )
    except httpx.HTTPError as exc:
        raise unreachable(settings.server, exc) from None
    if response.status_code != 200:
        raise refused(settings.server, response)
    body = answer_of(settings.server, response)
    try:
        settings.save_session(Session(settings.server, body["username"], body["session_token"]))
    except SessionNotKept as exc:
        raise CliError(exc.detail) from None
    print(
        f"Logged in to {settings.server} as {body['username']}; run `livestudio` to open the TUI."
    )

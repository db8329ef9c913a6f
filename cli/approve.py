"""``livestudio approve CODE``: approve a device login (``dvc studio login``) from a shell."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import msgspec

from cli.admin import CliError
from cli.remote import session_request
from shared.api import PendingLogin
from shared.text import printable


def approve(code: str, server: str | None, yes: bool) -> str:
    """Show what the code belongs to, confirm, approve; returns the new token's name."""
    _, found = session_request(server, "POST", "/api/device-login/lookup", {"user_code": code})
    login = msgspec.convert(found, PendingLogin)
    print(printable(login.describe(datetime.now(UTC))) + ".")
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("No terminal to confirm on; pass --yes to approve without asking.")
        if input("Approve it for your account? [y/N] ").strip().lower() not in {"y", "yes"}:
            raise CliError("Not approved; the client keeps waiting until its code expires.")
    _, approved = session_request(server, "POST", "/api/device-login/approve", {"user_code": code})
    return str(approved["token_name"])

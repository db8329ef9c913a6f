"""Device login, so ``dvc studio login --hostname URL`` works against livestudio (SPEC §5.3).

DVC asks for a device code and a short user code, prints a link, and polls. The user
approves the user code while logged in to livestudio (TUI profile screen or
``livestudio approve CODE``); the next poll creates a named client token for them and
hands it over once. Codes expire, are single-use, and wrong codes are rate-limited per user.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from backend.db import repository
from backend.db.repository import Principal
from backend.db.writer import WriteContext, Writer
from backend.services import accounts
from backend.services.errors import InvalidInput, NotFound, RateLimited
from backend.services.ingest import token_hash
from shared.text import one_line

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alikes
PENDING = "authorization_pending"
EXPIRED = "authorization_expired"
MAX_FAILED_APPROVALS = 10
FAILED_WINDOW = 600.0


@dataclass(frozen=True)
class Started:
    """What ``POST /api/device-login`` answers (besides the URIs)."""

    device_code: str
    user_code: str
    token_name: str
    expires_in: int


def normalise_code(user_code: str) -> str:
    """``bcdf-ghjk`` and ``BCDF GHJK`` are ``BCDF-GHJK``."""
    letters = re.sub(r"[^A-Za-z]", "", user_code).upper()
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else letters


def start_job(
    client_name: str, token_name: str | None, scopes: list[str] | None, now: float, ttl: float
) -> Callable[[WriteContext], Started]:
    """Create a device login request."""
    checked = accounts.normalise_scopes(scopes)
    # Both names are shown to the user who approves: plain text on one line (a name with
    # line breaks could write lines of its own into the approval dialog).
    client = one_line(client_name or "", 64) or "client"
    name = one_line(token_name or "", 64) or f"{client.lower()}-{secrets.token_hex(3)}"

    def job(ctx: WriteContext) -> Started:
        device_code = secrets.token_urlsafe(32)
        user_code = normalise_code("".join(secrets.choice(ALPHABET) for _ in range(8)))
        repository.prune_device_logins(ctx.conn, now - FAILED_WINDOW)
        repository.insert_device_login(
            ctx.conn,
            device_code_hash=token_hash(device_code),
            user_code=user_code,
            client_name=client,
            token_name=name,
            scopes=checked,
            now=now,
            expires_at=now + ttl,
        )
        return Started(device_code, user_code, name, int(ttl))

    return job


def poll_job(device_code: str, now: float) -> Callable[[WriteContext], str]:
    """Answer a polling client: pending, expired, or (once) the new access token."""
    hashed = token_hash(device_code)

    def job(ctx: WriteContext) -> str:
        login = repository.device_login_by_device_code(ctx.conn, hashed)
        if login is None:
            raise InvalidInput("invalid_device_code")
        if login.expires_at <= now:
            return EXPIRED
        if login.approved_by is None:
            return PENDING
        repository.delete_device_login(ctx.conn, login.id)
        new = accounts.client_token(ctx.conn, login.approved_by, login.token_name, login.scopes)
        return new.token

    return job


def _pending_by_code(
    ctx: WriteContext, user: Principal, code: str, now: float
) -> repository.DeviceLogin | None:
    """The pending request with this code, or None (and the wrong code is counted).

    Nobody is ever shown a list of codes: a user only learns about the request whose code
    their own ``dvc studio login`` printed, so a stranger's request cannot be approved by
    someone pressing a key, and guessing codes is cut off after a few tries.
    """
    failures = repository.failed_approvals_since(ctx.conn, user.user_id, now - FAILED_WINDOW)
    if failures >= MAX_FAILED_APPROVALS:
        raise RateLimited(
            "Too many wrong codes; wait ten minutes, then try again.", retry_after=FAILED_WINDOW
        )
    login = repository.device_login_by_user_code(ctx.conn, code)
    if login is None or login.expires_at <= now or login.approved_by is not None:
        repository.record_failed_approval(ctx.conn, user.user_id, now)
        return None
    return login


def lookup_job(
    user: Principal, user_code: str, now: float
) -> Callable[[WriteContext], repository.DeviceLogin | None]:
    """The request behind a code the user typed, to confirm before approving.

    A wrong code is recorded and answered with None rather than an exception, so the
    record is committed (an exception would roll the job back) and counts against the
    user's rate limit.
    """
    code = normalise_code(user_code)
    return lambda ctx: _pending_by_code(ctx, user, code, now)


def approve_job(
    user: Principal, user_code: str, now: float
) -> Callable[[WriteContext], str | None]:
    """Approve a pending request by its user code; returns its token name, or None."""
    code = normalise_code(user_code)

    def job(ctx: WriteContext) -> str | None:
        accounts.check_still_logged_in(ctx, user.session_id)
        login = _pending_by_code(ctx, user, code, now)
        if login is None:
            return None
        repository.approve_device_login(ctx.conn, login.id, user.user_id)
        return login.token_name

    return job


def _wrong_code(user_code: str) -> NotFound:
    return NotFound(
        f"No pending device login has the code {normalise_code(user_code)}; check what"
        " DVC printed (codes expire after a few minutes)."
    )


async def lookup(
    writer: Writer, user: Principal, user_code: str, now: float
) -> repository.DeviceLogin:
    """The pending request of a code; ``NotFound`` for a wrong, used or expired code."""
    login = await writer.submit(lookup_job(user, user_code, now))
    if login is None:
        raise _wrong_code(user_code)
    return login


async def approve(writer: Writer, user: Principal, user_code: str, now: float) -> str:
    """Approve a request; ``NotFound`` for a wrong, used or expired code."""
    token_name = await writer.submit(approve_job(user, user_code, now))
    if token_name is None:
        raise _wrong_code(user_code)
    return token_name

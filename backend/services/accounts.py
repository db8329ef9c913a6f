"""Users, passwords, sessions and access tokens (SPEC §2, §5.1).

Password hashing (argon2id) is deliberately slow, so it runs in a worker thread and never
inside the writer, where it would hold up every other write for its duration.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from collections.abc import Callable, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.db import repository
from backend.db import watches as watch_store
from backend.db.connection import Conn, Reader, duplicate_errors
from backend.db.repository import Principal
from backend.db.writer import WriteContext
from backend.services import events
from backend.services.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from backend.services.ingest import INVALID_TOKEN, token_hash
from backend.services.throttle import LoginThrottle, client_key
from backend.settings import password_memory_kib
from shared.api import NewToken

TOKEN_PREFIX = "lst_"
SESSION_PREFIX = "lss_"
SCOPES = frozenset({"EXPERIMENTS", "DATASETS", "MODELS"})
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD = 8


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(memory_cost=password_memory_kib())


def hash_password(password: str) -> str:
    """An argon2id hash of the password (memory cost: ``LIVESTUDIO_PASSWORD_MEMORY_KIB``)."""
    return _hasher().hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash (made with whatever cost it was)."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_new_user(username: str, password: str) -> None:
    """Refuse unusable names and short passwords with a sentence."""
    if not USERNAME.fullmatch(username):  # (match: "$" let a final newline in)
        raise InvalidInput(
            "A username is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    check_password(password)


def check_password(password: str) -> None:
    """Refuse passwords that are too short."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD} characters long.")


def create_user_job(
    username: str, password_hash: str, admin: bool
) -> Callable[[WriteContext], int]:
    """A write job creating a user; raises ``Conflict`` when the name is taken."""

    def job(ctx: WriteContext) -> int:
        try:
            return repository.insert_user(ctx.conn, username, password_hash, admin)
        except duplicate_errors():
            raise Conflict(
                f"A user named {username!r} already exists (usernames ignore case)."
            ) from None

    return job


def new_secret(prefix: str) -> str:
    """A random credential: 32 bytes of entropy behind a recognisable prefix."""
    return prefix + secrets.token_urlsafe(32)


def normalise_scopes(scopes: Iterable[str] | None) -> frozenset[str]:
    """Upper-case, checked scopes; none means all."""
    wanted = frozenset(s.strip().upper() for s in scopes or () if s.strip())
    unknown = wanted - SCOPES
    if unknown:
        raise InvalidInput(
            f"Unknown scope {', '.join(sorted(unknown))}; use some of {', '.join(sorted(SCOPES))}."
        )
    return wanted


def check_still_logged_in(ctx: WriteContext, session_id: int | None) -> None:
    """Refuse a new credential (token, SSH key, device approval) asked for with a session
    that has ended since the request was let in: a lock or a password reset committed in
    between left a locked-out user a working token."""
    if session_id is not None and not repository.session_exists(ctx.conn, session_id):
        raise NotAuthenticated("Your session has ended; log in again.")


def profile_token_job(
    user_id: int, session_id: int | None = None
) -> Callable[[WriteContext], NewToken]:
    """Generate or regenerate the profile token; the old one stops working on commit.
    ``session_id``: the session that asked (an admin's command has none)."""

    def job(ctx: WriteContext) -> NewToken:
        check_still_logged_in(ctx, session_id)
        if repository.delete_profile_token(ctx.conn, user_id):
            events.credentials_revoked(ctx, user_id)
        return _insert_token(ctx.conn, user_id, "profile", "profile", frozenset())

    return job


def client_token(conn: Conn, user_id: int, name: str, scopes: frozenset[str]) -> NewToken:
    """Create a named client token (device login)."""
    return _insert_token(conn, user_id, "client", name, scopes)


def _insert_token(
    conn: Conn, user_id: int, kind: str, name: str, scopes: frozenset[str]
) -> NewToken:
    secret = new_secret(TOKEN_PREFIX)
    token_id = repository.insert_token(
        conn,
        user_id=user_id,
        kind=kind,
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[:8],
        scopes=scopes,
    )
    return NewToken(token=secret, info=repository.token_info_sync(conn, token_id))


def delete_profile_token_job(user_id: int) -> Callable[[WriteContext], None]:
    """Delete the profile token; ``NotFound`` when there is none."""

    def job(ctx: WriteContext) -> None:
        if not repository.delete_profile_token(ctx.conn, user_id):
            raise NotFound("You have no profile token to delete.")
        events.credentials_revoked(ctx, user_id)

    return job


def delete_client_token_job(user_id: int, token_id: int) -> Callable[[WriteContext], None]:
    """Revoke one client token of the user."""

    def job(ctx: WriteContext) -> None:
        if not repository.delete_client_token(ctx.conn, user_id, token_id):
            raise NotFound(f"You have no client token with id {token_id}.")
        events.credentials_revoked(ctx, user_id)

    return job


async def login(db: Reader, username: str, password: str) -> repository.UserAuth:
    """Check a username and password; ``NotAuthenticated`` on any mismatch."""
    user = await repository.user_by_name(db, username)
    # Verify against a dummy hash for unknown users too, so timing does not reveal names.
    stored = user.password_hash if user else _dummy_hash()
    ok = await asyncio.to_thread(password_matches, stored, password)
    if user is None or not ok:
        raise NotAuthenticated("Wrong username or password.")
    return user


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown usernames against, so they take as long as known ones.

    Made on first use: hashing takes ~0.1 s, which every process start (each CLI
    command) would otherwise pay.
    """
    return hash_password(secrets.token_hex(16))


def start_session_job(
    user_id: int, address: str | None = None, now: float = 0.0, checked: str | None = None
) -> Callable[[WriteContext], str]:
    """Create a session and return its token; ``address``: the one logged in from,
    remembered as one of the user's (``remember_address_job``); ``checked``: the password
    hash the password was checked against, which must still be the user's (a lock or a
    reset committed while argon2 ran let a locked-out user log in)."""
    remember = None if address is None else remember_address_job(user_id, address, now)

    def job(ctx: WriteContext) -> str:
        if checked is not None and repository.password_hash_of(ctx.conn, user_id) != checked:
            raise NotAuthenticated("Wrong username or password.")
        secret = new_secret(SESSION_PREFIX)
        repository.insert_session(ctx.conn, user_id, token_hash(secret))
        if remember is not None:
            remember(ctx)
        return secret

    return job


async def admit_password_try(
    throttle: LoginThrottle, db: Reader, username: str, address: str, now: float
) -> None:
    """Admit one password try (login, password change, SSH's first login), or raise
    ``RateLimited``. An address the user logged in from before skips the per-user limits,
    as the database remembers it (after a restart too); the address's own limit is checked
    before that read."""
    throttle.check_address(address, now)
    key = client_key(address)
    known = await repository.login_address_known(db, username.strip(), key)
    throttle.attempt(username, address, now, known)


def password_change_key(session_id: int | None, user_id: int) -> str:
    """What a password change's tries count against, in place of an address: the login
    (session) they are made with.

    Every TUI over SSH reaches the API from the server's own address, so counted by
    address one user's typos refused every login and password change made from there;
    counted by account, a stolen session's guesses refused the owner's own change, the
    remedy for it. Each login keeps its own clock, as each address does; the per-user
    limits still count every login's failures together. The key is never remembered as
    a known address: a stolen session guessing meets the per-user delays however often
    the owner got it right.
    """
    return f"login {session_id}" if session_id is not None else f"account {user_id}"


def admit_password_change_try(throttle: LoginThrottle, user: str, key: str, now: float) -> None:
    """Admit one try at the current password by a logged-in user (``password_change_key``),
    or raise ``RateLimited``."""
    throttle.attempt(user, key, now, login=True)


def remember_address_job(user_id: int, address: str, now: float) -> Callable[[WriteContext], None]:
    """Remember an address the user proved their password from (see ``admit_password_try``)."""

    def job(ctx: WriteContext) -> None:
        repository.remember_login_address(ctx.conn, user_id, client_key(address), now)

    return job


def end_session_job(user_id: int, session_id: int) -> Callable[[WriteContext], None]:
    """End one session (its open event streams end too)."""

    def job(ctx: WriteContext) -> None:
        repository.delete_session(ctx.conn, session_id)
        events.credentials_revoked(ctx, user_id)

    return job


def change_password_job(
    principal: Principal, new_hash: str, reset_tokens: bool
) -> Callable[[WriteContext], None]:
    """Set a new password; end the user's other sessions; optionally drop every token and
    SSH key."""

    def job(ctx: WriteContext) -> None:
        # (A lock or a reset committed meanwhile ended the session: the old password's
        # check no longer counts, and setting this one would undo the lock.)
        check_still_logged_in(ctx, principal.session_id)
        repository.set_password(ctx.conn, principal.user_id, new_hash)
        repository.delete_other_sessions(ctx.conn, principal.user_id, principal.session_id)
        if reset_tokens:
            # SSH keys mint sessions: a key added with a stolen session would let its
            # holder back in after the password changed.
            repository.delete_all_tokens(ctx.conn, principal.user_id)
            repository.delete_all_ssh_keys(ctx.conn, principal.user_id)
            # An approved device login is a token waiting to be collected.
            repository.delete_device_approvals(ctx.conn, principal.user_id)
        events.credentials_revoked(ctx, principal.user_id)

    return job


def reset_password_job(user_id: int, new_hash: str | None) -> Callable[[WriteContext], None]:
    """An admin's reset: a new password (None: none matches it, the account is locked);
    every login of the user ends. Locked, their tokens, SSH keys, device approvals and
    watches go too: someone who left keeps nothing that lets them in or sends them news,
    while their runs and projects stay."""

    def job(ctx: WriteContext) -> None:
        repository.set_password(ctx.conn, user_id, new_hash or repository.LOCKED)
        repository.delete_other_sessions(ctx.conn, user_id, None)
        if new_hash is None:
            repository.delete_all_tokens(ctx.conn, user_id)
            repository.delete_all_ssh_keys(ctx.conn, user_id)
            repository.delete_device_approvals(ctx.conn, user_id)
            # Their webhooks would go on sending the projects' runs to an address of theirs.
            if watch_store.delete_watches_of(ctx.conn, user_id):
                ctx.emit(repository.NewEvent(kind="watches", data=b"{}", member_ids=(user_id,)))
        events.credentials_revoked(ctx, user_id)

    return job


async def authenticate(db: Reader, credential: str, session_days: float, now: float) -> Principal:
    """The principal behind a session or access token from an Authorization header.

    Sessions last ``session_days`` from login; access tokens last until deleted.
    """
    hashed = token_hash(credential)
    principal = (
        await repository.session_principal(db, hashed, now - session_days * 86400)
        if credential.startswith(SESSION_PREFIX)
        else await repository.token_principal(db, hashed)
    )
    if principal is None:
        if credential.startswith(SESSION_PREFIX):
            raise NotAuthenticated("Your session has ended or expired; log in again.")
        # (a script's or CI's token: logging in again gives it nothing)
        raise NotAuthenticated(INVALID_TOKEN)
    return principal


MALFORMED_AUTHORIZATION = (
    "The Authorization header is not understood; send 'Authorization: token <token>'"
    " (DVC_STUDIO_TOKEN) or 'Authorization: Bearer <token>'."
)


def parse_authorization(header: str | None) -> str | None:
    """The credential of ``Bearer <t>`` or ``token <t>``; ``None`` when absent.

    A header of another form is refused as such (``NotAuthenticated``): told that a token
    is missing, its sender would look for the wrong mistake.
    """
    if not header or not header.strip():
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in {"bearer", "token"} and value.strip():
        return value.strip()
    raise NotAuthenticated(MALFORMED_AUTHORIZATION)

"""Users, login sessions and access tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.db.common import NOW, next_id, ts
from backend.db.connection import Conn, Reader, Row
from shared.api import TokenInfo


@dataclass(frozen=True)
class UserAuth:
    """What login needs to know about a user."""

    id: int
    username: str
    password_hash: str
    is_admin: bool


def insert_user(conn: Conn, username: str, password_hash: str, admin: bool) -> int:
    """Create a user; raises ``sqlite3.IntegrityError`` when the name is taken."""
    cur = conn.execute(
        "INSERT INTO users (username, password_hash, is_admin, created_at)"
        " VALUES (?, ?, ?, " + NOW + ") RETURNING id",
        (username, password_hash, int(admin)),
    )
    return int(cur.fetchone()[0])


def user_from_row(row: Row | None) -> UserAuth | None:
    """A user from a row with its ``id, username, password_hash, is_admin`` columns."""
    if row is None:
        return None
    return UserAuth(row["id"], row["username"], row["password_hash"], bool(row["is_admin"]))


def user_by_name_sync(conn: Conn, username: str) -> UserAuth | None:
    """Look a user up by name (case-insensitive), for the CLI and the writer."""
    row = conn.execute(
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = ?",
        (username,),
    ).fetchone()
    return user_from_row(row)


def count_users(conn: Conn) -> int:
    """How many users exist."""
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def all_usernames(conn: Conn) -> list[str]:
    """Every username, sorted."""
    return [r["username"] for r in conn.execute("SELECT username FROM users ORDER BY username")]


@dataclass(frozen=True)
class UserSummary:
    """One account as ``livestudio user list`` shows it."""

    username: str
    is_admin: bool
    created_at: float
    locked: bool
    projects_owned: int
    tokens: int
    sessions: int


def user_summaries(conn: Conn, sessions_after: float) -> list[UserSummary]:
    """Every account, by name; its sessions started after ``sessions_after`` (older ones
    have expired)."""
    rows = conn.execute(
        "SELECT username, is_admin, created_at, password_hash = ? AS locked,"
        " (SELECT COUNT(*) FROM projects p WHERE p.owner_id = u.id) AS owned,"
        " (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id) AS tokens,"
        " (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id AND s.created_at > ?)"
        " AS sessions FROM users u ORDER BY username",
        (LOCKED, sessions_after),
    ).fetchall()
    return [
        UserSummary(r[0], bool(r[1]), float(r[2]), bool(r[3]), int(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]


LOCKED = "!locked"
"""The password hash of a locked account: no password matches it (it is no argon2 hash)."""


async def user_by_name(db: Reader, username: str) -> UserAuth | None:
    """Look a user up by name (case-insensitive)."""
    async with db.execute(
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = ?",
        (username,),
    ) as cur:
        row = await cur.fetchone()
    return user_from_row(row)


async def user_by_id(db: Reader, user_id: int) -> UserAuth | None:
    """Look a user up by id."""
    async with db.execute(
        "SELECT id, username, password_hash, is_admin FROM users WHERE id = ?", (user_id,)
    ) as cur:
        row = await cur.fetchone()
    return user_from_row(row)


def set_password(conn: Conn, user_id: int, password_hash: str) -> None:
    """Replace a user's password hash."""
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def insert_session(conn: Conn, user_id: int, token_hash: bytes) -> int:
    """Start a session."""
    cur = conn.execute(
        "INSERT INTO sessions (user_id, token_hash, created_at, last_used_at)"
        " VALUES (?, ?, " + NOW + ", " + NOW + ") RETURNING id",
        (user_id, token_hash),
    )
    return int(cur.fetchone()[0])


KNOWN_ADDRESSES = 20
"""Login addresses kept per user (the newest)."""


def remember_login_address(conn: Conn, user_id: int, address: str, now: float) -> None:
    """Note that the user logged in from ``address`` (keeping their newest few)."""
    conn.execute(
        "INSERT INTO login_addresses (user_id, address, last_at) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, address) DO UPDATE SET last_at = excluded.last_at",
        (user_id, address, now),
    )
    conn.execute(
        "DELETE FROM login_addresses WHERE user_id = ? AND address NOT IN"
        " (SELECT address FROM login_addresses WHERE user_id = ?"
        "  ORDER BY last_at DESC LIMIT ?)",
        (user_id, user_id, KNOWN_ADDRESSES),
    )


async def login_address_known(db: Reader, username: str, address: str) -> bool:
    """Whether the user of this name has logged in from ``address`` before."""
    async with db.execute(
        "SELECT 1 FROM login_addresses a JOIN users u ON u.id = a.user_id"
        " WHERE u.username = ? AND a.address = ?",
        (username, address),
    ) as cur:
        return await cur.fetchone() is not None


def password_hash_of(conn: Conn, user_id: int) -> str | None:
    """A user's stored password hash (``LOCKED`` when locked out); None: no such user."""
    row = conn.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else str(row[0])


def session_exists(conn: Conn, session_id: int) -> bool:
    """Whether a session is still there (not ended, replaced or locked out)."""
    return conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None


def delete_session(conn: Conn, session_id: int) -> None:
    """End one session."""
    conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def delete_other_sessions(conn: Conn, user_id: int, keep_id: int | None) -> None:
    """End every session of a user but ``keep_id``."""
    conn.execute("DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?", (user_id, keep_id))


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to and what it allows."""

    user_id: int
    username: str
    is_admin: bool
    session_id: int | None = None
    token_id: int | None = None
    scopes: frozenset[str] = frozenset()
    last_used_at: float | None = None
    kind: str = "session"
    """``session`` (logged in with a password), or the kind of access token."""

    @property
    def is_session(self) -> bool:
        """Whether this is a login session (account changes need one)."""
        return self.session_id is not None


async def session_principal(
    db: Reader, token_hash: bytes, created_after: float
) -> Principal | None:
    """The user behind a session token, if it exists and started after ``created_after``."""
    async with db.execute(
        "SELECT s.id AS session_id, u.id AS user_id, u.username, u.is_admin, s.last_used_at"
        " FROM sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.created_at > ?",
        (token_hash, created_after),
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return Principal(
        row["user_id"],
        row["username"],
        bool(row["is_admin"]),
        session_id=row["session_id"],
        last_used_at=row["last_used_at"],
    )


_TOKEN_PRINCIPAL = (
    "SELECT t.id AS token_id, u.id AS user_id, u.username, u.is_admin, t.scopes,"
    " t.last_used_at, t.kind FROM tokens t JOIN users u ON u.id = t.user_id"
    " WHERE t.token_hash = ?"
)


def _token_principal(row: Row | None) -> Principal | None:
    if row is None:
        return None
    return Principal(
        row["user_id"],
        row["username"],
        bool(row["is_admin"]),
        token_id=row["token_id"],
        scopes=frozenset(s for s in row["scopes"].split(",") if s),
        last_used_at=row["last_used_at"],
        kind=row["kind"],
    )


def token_principal_sync(conn: Conn, token_hash: bytes) -> Principal | None:
    """The user behind an access token, inside a write transaction."""
    return _token_principal(conn.execute(_TOKEN_PRINCIPAL, (token_hash,)).fetchone())


async def token_principal(db: Reader, token_hash: bytes) -> Principal | None:
    """The user behind an access token."""
    async with db.execute(_TOKEN_PRINCIPAL, (token_hash,)) as cur:
        return _token_principal(await cur.fetchone())


def touch_token(conn: Conn, token_id: int, now: float) -> None:
    """Record that a token was used."""
    conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, token_id))


def insert_token(
    conn: Conn,
    *,
    user_id: int,
    kind: str,
    name: str,
    token_hash: bytes,
    prefix: str,
    scopes: Iterable[str],
) -> int:
    """Store a new access token (hash and display prefix only)."""
    cur = conn.execute(
        "INSERT INTO tokens (id, user_id, kind, name, token_hash, prefix, scopes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, " + NOW + ") RETURNING id",
        (
            next_id(conn, "tokens"),
            user_id,
            kind,
            name,
            token_hash,
            prefix,
            ",".join(sorted(scopes)),
        ),
    )
    return int(cur.fetchone()[0])


def delete_profile_token(conn: Conn, user_id: int) -> bool:
    """Delete the user's profile token; False when there was none."""
    cur = conn.execute("DELETE FROM tokens WHERE user_id = ? AND kind = 'profile'", (user_id,))
    return cur.rowcount > 0


def delete_client_token(conn: Conn, user_id: int, token_id: int) -> bool:
    """Delete one client token of the user; False when it is not theirs or missing."""
    cur = conn.execute(
        "DELETE FROM tokens WHERE user_id = ? AND id = ? AND kind = 'client'",
        (user_id, token_id),
    )
    return cur.rowcount > 0


def delete_all_tokens(conn: Conn, user_id: int) -> None:
    """Delete every access token of the user."""
    conn.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))


def _token_info(row: Row) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        prefix=row["prefix"],
        scopes=[s for s in row["scopes"].split(",") if s],
        created_at=ts(row["created_at"]),  # type: ignore[arg-type]
        last_used_at=ts(row["last_used_at"]),
    )


_TOKEN_INFO = "SELECT id, name, kind, prefix, scopes, created_at, last_used_at FROM tokens"


def token_info_sync(conn: Conn, token_id: int) -> TokenInfo:
    """Metadata of one token."""
    return _token_info(conn.execute(f"{_TOKEN_INFO} WHERE id = ?", (token_id,)).fetchone())


async def user_tokens(db: Reader, user_id: int) -> list[TokenInfo]:
    """Every token of the user, profile token first."""
    async with db.execute(
        f"{_TOKEN_INFO} WHERE user_id = ? ORDER BY kind DESC, id", (user_id,)
    ) as cur:
        return [_token_info(row) for row in await cur.fetchall()]

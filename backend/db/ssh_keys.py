"""SSH public keys and the login sessions of TUIs served over SSH."""

from __future__ import annotations

from backend.db.accounts import UserAuth, user_from_row
from backend.db.common import NOW, next_id, ts
from backend.db.connection import Conn, Reader, Row
from shared.api import SshKeyInfo

_SSH_KEY = (
    "SELECT id, fingerprint, public_key, comment, created_at, last_used_at, confirmed_at"
    " FROM ssh_keys"
)


def _ssh_key(row: Row) -> SshKeyInfo:
    return SshKeyInfo(
        id=row["id"],
        fingerprint=row["fingerprint"],
        key_type=row["public_key"].split(" ", 1)[0],
        comment=row["comment"],
        created_at=ts(row["created_at"]),  # type: ignore[arg-type]
        last_used_at=ts(row["last_used_at"]),
        confirmed=row["confirmed_at"] is not None,
    )


def insert_ssh_key(
    conn: Conn, user_id: int, fingerprint: str, public_key: str, comment: str, confirmed: bool
) -> SshKeyInfo:
    """Store a key (or a claim on it); raises the engine's integrity error when this user
    has it already, or when it is ``confirmed`` and another account proved it theirs."""
    cur = conn.execute(
        "INSERT INTO ssh_keys (id, user_id, fingerprint, public_key, comment, created_at,"
        f" confirmed_at) VALUES (?, ?, ?, ?, ?, {NOW}, {NOW if confirmed else 'NULL'})"
        " RETURNING id",
        (next_id(conn, "ssh_keys"), user_id, fingerprint, public_key, comment),
    )
    return _ssh_key(conn.execute(f"{_SSH_KEY} WHERE id = ?", (cur.fetchone()[0],)).fetchone())


def ssh_key_claims(conn: Conn, fingerprint: str) -> list[tuple[int, bool]]:
    """(user id, proven) of every account that added a key."""
    rows = conn.execute(
        "SELECT user_id, confirmed_at FROM ssh_keys WHERE fingerprint = ?", (fingerprint,)
    ).fetchall()
    return [(row["user_id"], row["confirmed_at"] is not None) for row in rows]


def drop_other_claims(conn: Conn, user_id: int, fingerprint: str) -> None:
    """A key proven this user's is no one else's claim any more."""
    conn.execute(
        "DELETE FROM ssh_keys WHERE fingerprint = ? AND user_id != ? AND confirmed_at IS NULL",
        (fingerprint, user_id),
    )


def claim_ssh_key(
    conn: Conn, user_id: int, fingerprint: str, now: float, used: bool = True
) -> bool:
    """The key's holder logged in with it and this user's password (``used``), or an
    admin vouched for it: the key is this user's, proven, and every other claim goes.
    False if the user's claim is gone, or another account proved the key theirs first."""
    claims = dict(ssh_key_claims(conn, fingerprint))
    if any(proven for owner, proven in claims.items() if owner != user_id):
        return False
    if user_id not in claims:
        return False
    conn.execute(
        "UPDATE ssh_keys SET confirmed_at = COALESCE(confirmed_at, ?),"
        " last_used_at = CASE WHEN ? = 1 THEN ? ELSE last_used_at END"
        " WHERE fingerprint = ? AND user_id = ?",
        (now, int(used), now, fingerprint, user_id),
    )
    drop_other_claims(conn, user_id, fingerprint)
    return True


def delete_ssh_key(conn: Conn, user_id: int, fingerprint: str) -> bool:
    """Remove one of the user's keys; False when they have no such key."""
    cur = conn.execute(
        "DELETE FROM ssh_keys WHERE user_id = ? AND fingerprint = ?", (user_id, fingerprint)
    )
    return cur.rowcount > 0


def delete_all_ssh_keys(conn: Conn, user_id: int) -> None:
    """Remove every key of the user."""
    conn.execute("DELETE FROM ssh_keys WHERE user_id = ?", (user_id,))


def delete_ssh_key_by_id(conn: Conn, user_id: int, key_id: int) -> bool:
    """Remove one of the user's keys by id; False when they have no such key."""
    cur = conn.execute("DELETE FROM ssh_keys WHERE user_id = ? AND id = ?", (user_id, key_id))
    return cur.rowcount > 0


def ssh_keys_sync(conn: Conn, user_id: int) -> list[SshKeyInfo]:
    """The user's keys, oldest first (for the CLI)."""
    rows = conn.execute(f"{_SSH_KEY} WHERE user_id = ? ORDER BY id", (user_id,)).fetchall()
    return [_ssh_key(r) for r in rows]


async def ssh_keys_of(db: Reader, user_id: int) -> list[SshKeyInfo]:
    """The user's keys, oldest first."""
    async with db.execute(f"{_SSH_KEY} WHERE user_id = ? ORDER BY id", (user_id,)) as cur:
        return [_ssh_key(r) for r in await cur.fetchall()]


async def user_of_ssh_key(
    db: Reader, fingerprint: str, username: str
) -> tuple[UserAuth, bool] | None:
    """Who a key logs in, and whether it is proven: the account that proved it theirs,
    whatever name the client gives; else the account named ``username``, if it claims it."""
    async with db.execute(
        "SELECT u.id, u.username, u.password_hash, u.is_admin, k.confirmed_at FROM ssh_keys k"
        " JOIN users u ON u.id = k.user_id WHERE k.fingerprint = ?"
        " AND (k.confirmed_at IS NOT NULL OR u.username = ?)"
        " ORDER BY k.confirmed_at IS NULL LIMIT 1",
        (fingerprint, username),
    ) as cur:
        row = await cur.fetchone()
    user = user_from_row(row)
    return None if user is None else (user, row["confirmed_at"] is not None)


def touch_ssh_key(conn: Conn, fingerprint: str, now: float) -> None:
    """Record that a key logged in."""
    conn.execute(
        "UPDATE ssh_keys SET last_used_at = ? WHERE fingerprint = ? AND confirmed_at IS NOT NULL",
        (now, fingerprint),
    )


def mark_ssh_session(conn: Conn, session_id: int, listener: str) -> None:
    """Record that a login session belongs to a TUI served over SSH by ``listener``."""
    conn.execute(
        "INSERT INTO ssh_sessions (session_id, listener) VALUES (?, ?)", (session_id, listener)
    )


def touch_ssh_sessions(conn: Conn, session_ids: list[int], now: float) -> None:
    """Mark the SSH TUIs' logins a server still holds as alive (see ``end_ssh_sessions``)."""
    for start in range(0, len(session_ids), 500):
        chunk = session_ids[start : start + 500]
        conn.execute(
            f"UPDATE sessions SET last_used_at = ? WHERE id IN ({', '.join('?' * len(chunk))})",
            (now, *chunk),
        )


def end_stale_ssh_sessions(conn: Conn, before: float) -> int:
    """End the SSH TUIs' logins no server has marked alive since ``before``: left by a
    server that was killed and never came back under the same host and port."""
    cur = conn.execute(
        "DELETE FROM sessions WHERE id IN (SELECT session_id FROM ssh_sessions)"
        " AND last_used_at < ?",
        (before,),
    )
    return cur.rowcount


def end_ssh_sessions(conn: Conn, listener: str) -> int:
    """End the login sessions ``listener`` made for SSH (left when it did not stop cleanly);
    other servers' on the same database go on."""
    cur = conn.execute(
        "DELETE FROM sessions WHERE id IN (SELECT session_id FROM ssh_sessions"
        " WHERE listener = ? OR listener IS NULL)",
        (listener,),
    )
    return cur.rowcount

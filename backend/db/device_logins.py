"""Device login requests (``dvc studio login``) and failed approvals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.db.connection import Conn, Reader, Row


@dataclass(frozen=True)
class DeviceLogin:
    """A device login request (``dvc studio login``)."""

    id: int
    user_code: str
    client_name: str
    token_name: str
    scopes: frozenset[str]
    created_at: float
    expires_at: float
    approved_by: int | None


_DEVICE_COLUMNS = (
    "id, user_code, client_name, token_name, scopes, created_at, expires_at, approved_by"
)


def _device_login(row: Row) -> DeviceLogin:
    return DeviceLogin(
        id=row["id"],
        user_code=row["user_code"],
        client_name=row["client_name"],
        token_name=row["token_name"],
        scopes=frozenset(s for s in row["scopes"].split(",") if s),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        approved_by=row["approved_by"],
    )


def insert_device_login(
    conn: Conn,
    *,
    device_code_hash: bytes,
    user_code: str,
    client_name: str,
    token_name: str,
    scopes: Iterable[str],
    now: float,
    expires_at: float,
) -> None:
    """Store a new device login request."""
    conn.execute(
        "INSERT INTO device_logins (device_code_hash, user_code, client_name, token_name,"
        " scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            device_code_hash,
            user_code,
            client_name,
            token_name,
            ",".join(sorted(scopes)),
            now,
            expires_at,
        ),
    )


def device_login_by_device_code(conn: Conn, device_code_hash: bytes) -> DeviceLogin | None:
    """The request a polling client asks about."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM device_logins WHERE device_code_hash = ?",
        (device_code_hash,),
    ).fetchone()
    return _device_login(row) if row else None


def device_login_by_user_code(conn: Conn, user_code: str) -> DeviceLogin | None:
    """The request a user approves."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM device_logins WHERE user_code = ?", (user_code,)
    ).fetchone()
    return _device_login(row) if row else None


def approve_device_login(conn: Conn, login_id: int, user_id: int) -> None:
    """Record who approved the request."""
    conn.execute("UPDATE device_logins SET approved_by = ? WHERE id = ?", (user_id, login_id))


def delete_device_login(conn: Conn, login_id: int) -> None:
    """Forget a used or expired request (its codes are single-use)."""
    conn.execute("DELETE FROM device_logins WHERE id = ?", (login_id,))


def delete_device_approvals(conn: Conn, user_id: int) -> None:
    """Forget the requests ``user_id`` approved whose token is not collected yet."""
    conn.execute("DELETE FROM device_logins WHERE approved_by = ?", (user_id,))


def prune_device_logins(conn: Conn, before: float) -> None:
    """Drop requests that expired before ``before`` and old failed approvals."""
    conn.execute("DELETE FROM device_logins WHERE expires_at < ?", (before,))
    conn.execute("DELETE FROM failed_approvals WHERE at < ?", (before,))


def record_failed_approval(conn: Conn, user_id: int, now: float) -> None:
    """Remember a wrong code typed by the user (for rate limiting)."""
    conn.execute("INSERT INTO failed_approvals (user_id, at) VALUES (?, ?)", (user_id, now))


def failed_approvals_since(conn: Conn, user_id: int, since: float) -> int:
    """How many wrong codes the user typed since ``since``."""
    row = conn.execute(
        "SELECT COUNT(*) FROM failed_approvals WHERE user_id = ? AND at >= ?", (user_id, since)
    ).fetchone()
    return int(row[0])


async def pending_device_logins(db: Reader, now: float) -> list[DeviceLogin]:
    """Requests still waiting for approval, newest first."""
    async with db.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM device_logins"
        " WHERE approved_by IS NULL AND expires_at > ? ORDER BY created_at DESC",
        (now,),
    ) as cur:
        return [_device_login(r) for r in await cur.fetchall()]

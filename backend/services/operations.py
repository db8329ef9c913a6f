"""What operators ask of a running server: is it healthy, and who may read its metrics."""

from __future__ import annotations

import sqlite3

import aiosqlite

from backend.db.connection import ping
from backend.db.repository import Principal
from backend.services.errors import Forbidden


async def health(db: aiosqlite.Connection) -> dict[str, str]:
    """The engine, and whether the database answers (``status`` says ok or degraded)."""
    try:
        await ping(db)
    except (sqlite3.Error, ValueError) as exc:
        return {
            "status": "degraded",
            "engine": "sqlite",
            "database": f"does not answer: {exc}",
        }
    return {"status": "ok", "engine": "sqlite", "database": "ok"}


def require_admin(user: Principal) -> None:
    """Metrics show every user's activity in aggregate: admins only."""
    if not user.is_admin:
        raise Forbidden(
            "Only an admin can read /metrics; scrape it with an admin's access token"
            " (livestudio token create ADMIN)."
        )

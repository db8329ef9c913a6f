"""What operators ask of a running server: is it healthy, and who may read its metrics."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
from litestar.channels.backends.base import ChannelsBackend
from redis.exceptions import RedisError

from backend.db.connection import Reader, is_postgres, ping
from backend.db.repository import Principal
from backend.services.errors import Forbidden
from backend.services.fanout import ResilientRedisBackend

PING_TIMEOUT = 2.0


async def health(db: Reader, fanout: ChannelsBackend) -> dict[str, str]:
    """The engine, and whether the database (and Redis) answer; ``status`` ok or degraded."""
    engine = "postgresql" if is_postgres(db) else "sqlite"
    answer = {"status": "ok", "engine": engine, "database": "ok"}
    try:
        await asyncio.wait_for(ping(db), PING_TIMEOUT)
    except (sqlite3.Error, psycopg.Error, ValueError, TimeoutError) as exc:
        answer["status"] = "degraded"
        answer["database"] = f"does not answer: {_reason(exc)}"
    if isinstance(fanout, ResilientRedisBackend):
        answer["redis"] = "ok"
        try:
            await asyncio.wait_for(fanout.ping(), PING_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            answer["status"] = "degraded"
            answer["redis"] = f"does not answer: {_reason(exc)}"
    return answer


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no answer in time"


def require_admin(user: Principal) -> None:
    """Metrics show every user's activity in aggregate: admins only."""
    if not user.is_admin:
        raise Forbidden(
            "Only an admin can read /metrics; scrape it with an admin's access token"
            " (livestudio token create ADMIN)."
        )

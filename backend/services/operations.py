"""What operators ask of a running server: is it healthy, and who may read its metrics."""

from __future__ import annotations

import asyncio

from litestar.channels.backends.base import ChannelsBackend

from backend.db.connection import Reader, database_errors, is_postgres, ping
from backend.db.repository import Principal
from backend.services.errors import Forbidden

PING_TIMEOUT = 2.0


async def health(db: Reader, fanout: ChannelsBackend) -> dict[str, str]:
    """The engine, and whether the database (and Redis) answer; ``status`` ok or degraded."""
    engine = "postgresql" if is_postgres(db) else "sqlite"
    answer = {"status": "ok", "engine": engine, "database": "ok"}
    try:
        await asyncio.wait_for(ping(db), PING_TIMEOUT)
    except database_errors(ValueError, TimeoutError) as exc:
        answer["status"] = "degraded"
        answer["database"] = f"does not answer: {_reason(exc)}"
    ping_redis = getattr(fanout, "ping", None)  # only the Redis backend has one
    if ping_redis is not None:
        answer["redis"] = "ok"
        try:
            await asyncio.wait_for(ping_redis(), PING_TIMEOUT)
        except Exception as exc:  # whatever Redis raised, /health answers
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

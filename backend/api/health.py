"""Liveness and operations: ``/health`` for load balancers, ``/metrics`` for Prometheus."""

from __future__ import annotations

from litestar import MediaType, Response, get

from backend import metrics
from backend.api.deps import BackendDep, UserDep
from backend.services import operations


@get("/health", summary="Liveness check")
async def health(backend: BackendDep) -> Response[dict[str, str]]:
    """``{"status": "ok", "engine": "sqlite", "database": "ok"}``; 503 naming what is down."""
    answer = await operations.health(backend.reader, backend.channels._backend)
    return Response(answer, status_code=200 if answer["status"] == "ok" else 503)


@get("/metrics", summary="Prometheus metrics", media_type=MediaType.TEXT)
async def prometheus(user: UserDep) -> Response[bytes]:
    """Every instrument in Prometheus' text format; an admin's session or token reads it."""
    operations.require_admin(user)
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

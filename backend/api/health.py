"""Liveness."""

from litestar import get


@get("/health", summary="Liveness check")
async def health() -> dict[str, str]:
    """``{"status": "ok"}`` while the server runs."""
    return {"status": "ok"}

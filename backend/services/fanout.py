"""Which channel backend carries committed events to the stream clients of every process.

One process: Litestar's in-memory backend. Several processes (``--workers``, several
machines): Redis pub/sub (``backend.services.redis_fanout``, imported only then).
"""

from __future__ import annotations

from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend


def channels_backend(redis_url: str) -> ChannelsBackend:
    """Redis when a URL is given, else this process's memory."""
    if redis_url:
        from backend.services.redis_fanout import ResilientRedisBackend

        return ResilientRedisBackend(redis_url)
    return MemoryChannelsBackend()

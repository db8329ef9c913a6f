"""Redis pub/sub between server processes, so a post committed by any process reaches
the stream clients of all of them.

Pub/sub keeps nothing: a message published while Redis is away, or while a process is
disconnected from it, is lost. That is safe here because the events table is the truth
and the channel only says "something new": a stream that sees an id jump reads the gap
from the database (see ``broadcast.stream``), and idle streams check the table at every
heartbeat. So this backend's one duty is to never die: Litestar's plugin ends its
publishing and subscribing tasks at the first exception, which would silence every
stream of the process for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PUBLISH_WAIT = 5.0
"""Seconds a publish may take before Redis is taken for down."""
RETRY = 0.5
"""Seconds between two tries to reach Redis again."""


class ResilientRedisBackend(RedisChannelsPubSubBackend):
    """Redis pub/sub that logs and retries instead of raising (see the module docstring)."""

    def __init__(self, url: str) -> None:
        super().__init__(
            redis=Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10),
            key_prefix="livestudio",
        )
        self._channels: set[str] = set()
        """Every channel subscribed (namespaced), to subscribe again after a reconnect."""
        self._subscribed = False
        self.namespace = ""
        """The database's instance id, set before the first subscription."""
        self._down_since: float | None = None
        self._last_try = 0.0
        self._subscribing = asyncio.Lock()
        """One (un)subscription at a time: redis-py's PubSub opens its connection on the
        first command, and two at once (the watcher's and the login throttle's, as a
        process starts) each opened one. Only the last was read, so a process whose
        last-opened connection held only the throttle's channel never delivered an event
        live again (its streams caught up at heartbeats, stall watches fired falsely)."""

    def _down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("Redis does not answer (%s); streams catch up from the database", exc)

    def _up(self) -> None:
        if self._down_since is not None:
            log.warning("Redis answers again")
            self._down_since = None

    @property
    def healthy(self) -> bool:
        """Whether the last exchange with Redis worked."""
        return self._down_since is None

    def _named(self, channels: Iterable[str]) -> list[str]:
        return [f"livestudio:{self.namespace}:{channel}" for channel in channels]

    async def subscribe(self, channels: Iterable[str]) -> None:
        named = self._named(channels)
        async with self._subscribing:
            self._channels.update(named)
            try:
                await super().subscribe(named)
            except (RedisError, OSError) as exc:
                self._down(exc)  # stream_events subscribes once Redis answers
            else:
                self._subscribed = True

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        named = self._named(channels)
        async with self._subscribing:
            self._channels.difference_update(named)
            with contextlib.suppress(RedisError, OSError):
                await super().unsubscribe(named)

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        now = time.monotonic()
        if self._down_since is not None and now - self._last_try < RETRY:
            return  # dropped: subscribers read it from the database (module docstring)
        self._last_try = now
        try:
            # A Redis that hangs rather than refuses must not stall publishing for good.
            await asyncio.wait_for(super().publish(data, self._named(channels)), PUBLISH_WAIT)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down(exc)
        else:
            self._up()

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        while True:
            try:
                if not self._subscribed:
                    if not self._channels:  # the plugin subscribes right after starting us
                        await asyncio.sleep(0.01)
                        continue
                    async with self._subscribing:
                        if not self._subscribed:  # (subscribe may have, meanwhile)
                            await super().subscribe(list(self._channels))
                            self._subscribed = True
                    self._up()
                async for channel, data in super().stream_events():
                    self._up()
                    yield channel.rsplit(":", 1)[1], data
            except (RedisError, OSError) as exc:
                self._down(exc)
                self._subscribed = False
                await asyncio.sleep(RETRY)
                with contextlib.suppress(RedisError, OSError):
                    await self._pub_sub.aclose()
                # A new PubSub (and connection) on the next try.
                self._RedisChannelsPubSubBackend__pub_sub = None

    async def ping(self) -> None:
        """Raise if Redis does not answer."""
        await self._redis.ping()

    async def on_shutdown(self) -> None:
        try:
            await super().on_shutdown()
        finally:
            await self._redis.aclose()

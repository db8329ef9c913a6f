"""Login throttling and device-login limits that hold across server processes.

Each process keeps its own ``LoginThrottle`` and device-start window (checks stay
synchronous and cost no round trip), and tells every other process, through the event
fan-out (Redis), of each try it admits and each success; they record it as their own.
A try is admitted against everything reported so far, so a burst spread over N processes
can pass the limit only by the tries still in flight on the channel (milliseconds).
"""

from __future__ import annotations

import asyncio
import logging
import os

import msgspec
from litestar.channels import ChannelsPlugin

from backend.services.throttle import LoginThrottle, SlidingWindow

CHANNEL = "livestudio-throttle"
log = logging.getLogger(__name__)


class Record(msgspec.Struct, array_like=True, frozen=True):
    """One try, success or device start, as sent to the other processes."""

    origin: bytes
    kind: str
    name: str
    address: str
    at: float


_decoder = msgspec.msgpack.Decoder(Record)


class ThrottleSync:
    """Shares ``logins`` and ``device_starts`` with the other processes (module docstring)."""

    def __init__(
        self, channels: ChannelsPlugin, logins: LoginThrottle, device_starts: SlidingWindow
    ) -> None:
        self.channels = channels
        self.logins = logins
        self.device_starts = device_starts
        self.origin = os.urandom(8)
        logins.on_record = self._login_recorded
        device_starts.on_record = self._device_started

    def _send(self, kind: str, name: str, address: str, at: float) -> None:
        record = Record(self.origin, kind, name, address, at)
        self.channels.publish(msgspec.msgpack.encode(record), CHANNEL)

    def _login_recorded(self, kind: str, key: tuple[str, str], at: float) -> None:
        self._send(kind, key[0], key[1], at)

    def _device_started(self, kind: str, key: object, at: float) -> None:
        self._send("device", "", str(key), at)

    def apply(self, raw: bytes) -> None:
        """Record what another process reported (our own reports come back too: skipped)."""
        record = _decoder.decode(raw)
        if record.origin == self.origin:
            return
        if record.kind == "try":
            self.logins.record_try(record.name, record.address, record.at)
        elif record.kind in ("ok", "back"):
            known = record.kind == "ok"
            self.logins.record_success(record.name, record.address, record.at, known=known)
        elif record.kind == "device":
            self.device_starts.record(record.address, record.at)

    async def run(self) -> None:
        """Apply the other processes' reports until cancelled."""
        while True:
            try:
                async with self.channels.start_subscription([CHANNEL]) as subscriber:
                    async for raw in subscriber.iter_events():
                        self.apply(raw)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("throttle sharing failed; restarting it")
                await asyncio.sleep(1)

"""uvicorn's HTTP protocol (httptools) with bounds on a request's head and on its pace.

httptools sets no limit on the request line and headers: a stranger could send one 50 MB
header to any URL, and the server kept it all in memory (six at once took 700 MB).
Here the bytes received before a request's headers are complete are counted, and so are
the bytes of a body that are not body (a chunked body's trailer fields are kept like
headers); past ``MAX_HEAD_BYTES`` the connection is answered 431 and closed.

Nor does uvicorn limit how long a request may take to arrive: a connection that sends
nothing, or one byte a minute, was kept open for ever, and a few thousand of them used up
the server's file descriptors (slowloris). Here a request's line and headers must arrive
within ``request_timeout`` of its first byte (of the connection, for the first request),
and its body within ``request_timeout`` plus a second per ``MIN_BODY_RATE`` bytes (of at
most ``max_body``); otherwise it is answered 408 and the connection closed. A request
answered before its body arrived (413, 401) has its connection closed after the answer,
rather than its body read and thrown away for as long as the client sends it. Time spent
answering is not counted, nor are idle kept-alive connections (uvicorn closes those after
``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from backend.connection_limits import ConnectionLimit, own_tuis
from backend.settings import Settings

MAX_HEAD_BYTES = 64 << 10
"""The request line and headers together (nginx allows 32 KiB by default)."""
TOO_LARGE = b"Request headers too large; send at most 64 KiB of headers."
REQUEST_TIMEOUT = Settings.request_timeout
"""Seconds for a request's line and headers (``LIVESTUDIO_REQUEST_TIMEOUT``)."""
MIN_BODY_RATE = 16 << 10
"""Bytes a second a body must arrive at, on average, beyond ``request_timeout``."""
MAX_BODY = Settings.max_body
"""The most a body is given time for, whatever size it declares (``LIVESTUDIO_MAX_BODY``);
a body of unknown length (chunked) is given time for this much too."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` refusing a request whose head outgrows ``MAX_HEAD_BYTES``.

    A chunk that completes the headers is parsed whatever its size (it may hold the start
    of the body), so a head is bounded by the limit plus one read.
    """

    request_timeout = REQUEST_TIMEOUT
    max_body = MAX_BODY
    limit = ConnectionLimit("HTTP", Settings.connections_per_address, tuis=own_tuis)
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = ()
    """Trusted proxies, not limited (None: any address may be one, ``*``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._receiving = True
        """A request is arriving (its head or its body), as opposed to being answered."""
        self._head_bytes = 0
        """Bytes received for the current request's head; -1 once its headers are in."""
        self._framing = 0
        """Bytes of the current body that are not body: chunk sizes and trailer fields,
        which httptools keeps like headers (a chunked body may end in any number)."""
        self._address: str | None = None
        """The client address this connection counts against (None: not counted)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if address is not None and self.limit.per_address and not self._trusted(address):
            if not self.limit.admit(address):
                transport.close()  # before a byte is read: no request, no answer
                return
            self._address = address
        self._allow(self.request_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disallow()
        if self._address is not None:
            self.limit.release(self._address)
            self._address = None
        super().connection_lost(exc)

    def _trusted(self, address: str) -> bool:
        if self.proxies is None:
            return True
        if not self.proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    def data_received(self, data: bytes) -> None:
        if not self._receiving:  # the first bytes of the next request on this connection
            self._receiving = True
            self._allow(self.request_timeout)
        if self._head_bytes >= 0:
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()
                return
            self._head_bytes += len(data)
        else:
            if self._framing > MAX_HEAD_BYTES:
                self._refuse()
                return
            self._framing += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_bytes = -1
        self._framing = 0
        super().on_headers_complete()
        length = next((v for k, v in self.headers if k == b"content-length"), None)
        declared = int(length) if length is not None and length.isdigit() else self.max_body
        self._allow(self.request_timeout + min(declared, self.max_body) / MIN_BODY_RATE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._receiving:  # a pipelined request, begun in the previous one's bytes
            self._receiving = True
            self._allow(self.request_timeout)

    def on_response_complete(self) -> None:
        # The answer went out before its request's body arrived (a 413 for the size it
        # declares, a stranger's 401...). uvicorn would read on and throw the body away,
        # however large or slow; the answer said all there is to say. (With requests
        # queued behind it, this one was received whole.)
        unread = not self.pipeline and self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if unread and not self.transport.is_closing():
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self._framing -= len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0  # the next request on this connection starts its head
        self._framing = 0
        self._receiving = False
        self._disallow()

    def _allow(self, seconds: float) -> None:
        """The current request must have arrived within ``seconds`` from now."""
        self._disallow()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disallow(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        # Still in its head, the request has no answer of its own yet (``self.cycle`` is
        # the one before it, if any); in its body, ``self.cycle`` is its own.
        if self._head_bytes >= 0 or self.cycle is None or not self.cycle.response_started:
            seconds = f"{self.request_timeout:g}"
            self._close_with(
                408,
                f"Request timeout: send a request's headers within {seconds} s and its body"
                f" at {MIN_BODY_RATE >> 10} KiB/s or faster.".encode(),
            )
        else:
            self.transport.close()

    def _refuse(self) -> None:
        if self.transport.is_closing():
            return
        self._close_with(431, TOO_LARGE)

    def _close_with(self, status: int, text: bytes) -> None:
        # The same JSON and headers as every other answer (a client reads `detail`).
        body = msgspec.json.encode({"status_code": status, "detail": text.decode()})
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"cache-control: no-store\r\n",
                    b"x-content-type-options: nosniff\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()


def configure(settings: Settings) -> None:
    """The server's settings, for every connection from now on."""
    protocol = BoundedHttpToolsProtocol
    protocol.request_timeout = settings.request_timeout
    protocol.max_body = settings.max_body
    protocol.limit = ConnectionLimit("HTTP", settings.connections_per_address, tuis=own_tuis)
    listed = [p.strip() for p in settings.forwarded_allow_ips.split(",") if p.strip()]
    protocol.proxies = (
        None if "*" in listed else tuple(ipaddress.ip_network(p, strict=False) for p in listed)
    )

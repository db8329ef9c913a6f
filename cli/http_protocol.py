"""uvicorn's HTTP protocol (httptools) with a bound on the size of a request's head.

httptools sets no limit on the request line and headers: a stranger could send one 50 MB
header to any URL, and the server kept it all in memory (six at once took 700 MB).
Here the bytes received before a request's headers are complete are counted, and so are
the bytes of a body that are not body (a chunked body's trailer fields are kept like
headers); past ``MAX_HEAD_BYTES`` the connection is answered 431 and closed.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 64 << 10
"""The request line and headers together (nginx allows 32 KiB by default)."""
TOO_LARGE = b"Request headers too large; send at most 64 KiB of headers."


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` refusing a request whose head outgrows ``MAX_HEAD_BYTES``.

    A chunk that completes the headers is parsed whatever its size (it may hold the start
    of the body), so a head is bounded by the limit plus one read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        """Bytes received for the current request's head; -1 once its headers are in."""
        self._framing = 0
        """Bytes of the current body that are not body: chunk sizes and trailer fields,
        which httptools keeps like headers (a chunked body may end in any number)."""

    def data_received(self, data: bytes) -> None:
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

    def on_body(self, body: bytes) -> None:
        self._framing -= len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0  # the next request on this connection starts its head
        self._framing = 0

    def _refuse(self) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(TOO_LARGE)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    TOO_LARGE,
                ]
            )
        )
        self.transport.close()

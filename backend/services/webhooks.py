"""Posting alerts to a watch's webhook: Slack- and Discord-compatible JSON, retried, logged.

Every attempt is logged (``webhook_deliveries``) so the TUI can show whether an alert
reached its channel. A receiver that answers 5xx, 408 or 429, or cannot be reached, is
tried again after growing delays; any other 4xx means the URL is wrong and is not retried.

The server posts where a user tells it to, so by default it refuses addresses that are
not public (loopback, private networks, link-local cloud metadata): a user must not be
able to make the server probe its own network. ``LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE=1``
allows them for a team whose chat server is on the inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import msgspec

from backend import metrics
from backend.db import watches as store
from backend.db.writer import WriteContext, Writer, cache_safe
from shared.text import printable
from shared.watches import AlertInfo

if TYPE_CHECKING:  # imported on the first delivery: it costs ~0.1 s of every server start
    import httpx

log = logging.getLogger(__name__)

RETRY_AFTER = (0.0, 1.0, 4.0, 15.0)
"""Delays before each attempt, in units of the ``webhook_retry_delay`` setting."""
TIMEOUT = 5.0
ATTEMPT_TIMEOUT = 10.0
_TIMED_OUT = {
    "ConnectTimeout": "could not connect",
    "ReadTimeout": "no answer",
    "WriteTimeout": "could not send the alert",
    "PoolTimeout": "no connection free",
}
"""What each of httpx's timeouts means for a delivery (by name: httpx is imported late)."""
PRIVATE = (
    "refused: {host} has no public address (a typo? an internal host needs"
    " LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE=1 on the server)"
)
_NOT_FOUND = frozenset(
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)
)
"""Resolver answers that say the name has no address (others may pass: tried again)."""


class Refused(Exception):
    """The URL may not be posted to (not retried)."""


def payload(alert: AlertInfo) -> bytes:
    """``text`` for Slack, ``content`` for Discord, and the alert itself for scripts.

    Names come from whoever posts runs: Slack's ``<!channel>``-style mentions are escaped
    and Discord is told to ping nobody, so a run named ``@everyone`` pings no one.
    """
    line = f"{alert.title} ({alert.detail})"
    slack = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return msgspec.json.encode(
        {
            "text": slack,
            "content": line[:2000],  # Discord's limit
            "allowed_mentions": {"parse": []},
            "username": "livestudio",
            "alert": alert,
        }
    )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_EMBEDDING = (  # IPv6 forms whose last 32 bits are an IPv4 address a host may reach
    _NAT64,
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated; some stacks still route it)
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
)
_LOCAL = (
    ipaddress.ip_network("fec0::/10"),  # site-local
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable address, also when an IPv4 one hides inside an IPv6 form."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and any(address in net for net in _EMBEDDING):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return is_public(inner)
        if any(address in net for net in _LOCAL):
            return False
    return address.is_global


def literal_refusal(url: str) -> str | None:
    """Why a webhook URL will be refused, when its host says so without a DNS look-up
    (an address that is not public, or ``localhost``); ``None`` when it may do.

    Names are judged only when an alert is posted: resolving them when a watch is made
    would let any user learn through the server what its resolver answers.
    """
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:  # not a URL: the watch's own checks say what is wrong with it
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the forms the resolver reads as IPv4 too: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None  # a name
    return None if is_public(address) else host


async def pinned(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to connect to, resolved once and checked: (URL with the IP, headers, extensions).

    Connecting to the address that was checked (the name kept for ``Host`` and for TLS)
    is what stops DNS rebinding: a name resolved again at connect time could point
    somewhere else.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        if not isinstance(exc, socket.gaierror) or exc.errno not in _NOT_FOUND:
            raise ConnectionError(f"cannot resolve {host}: the resolver failed") from None
        # A name with no address is told as a private one is: otherwise the delivery log
        # would tell a user which internal names the server's resolver knows.
        raise Refused(PRIVATE.format(host=host)) from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(is_public(a) for a in addresses):
        raise Refused(PRIVATE.format(host=host))
    first = addresses[0]
    literal = f"[{first}]" if first.version == 6 else str(first)
    target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": host if parts.port is None else f"{host}:{parts.port}"}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, headers, extensions


def delivery_job(
    alert_id: int, attempt: int, now: float, status: int | None, error: str | None
) -> Callable[[WriteContext], None]:
    """A writer job that logs one attempt."""

    @cache_safe
    def job(ctx: WriteContext) -> None:
        store.record_delivery(ctx.conn, alert_id, attempt, now, status, error)

    return job


def new_client() -> httpx.AsyncClient:
    """The HTTP client webhooks are posted with."""
    import httpx

    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)


async def deliver(
    client: httpx.AsyncClient,
    writer: Writer,
    alert: AlertInfo,
    url: str,
    *,
    allow_private: bool,
    retry_delay: float,
    clock: Callable[[], float],
    delays: Sequence[float] = RETRY_AFTER,
) -> bool:
    """Post an alert until it is accepted or the attempts run out; True when delivered."""
    body = payload(alert)
    for attempt, delay in enumerate(delays, start=1):
        if delay:
            await asyncio.sleep(delay * retry_delay)
        status: int | None = None
        error: str | None = None
        retry = True
        try:
            target = url
            headers: dict[str, str] = {}
            extensions: dict[str, str] = {}
            if not allow_private:
                target, headers, extensions = await pinned(url)
            headers["Content-Type"] = "application/json"
            # The whole attempt is bounded (a receiver dripping bytes cannot hold it), and
            # the answer's body is never read.
            async with (
                asyncio.timeout(ATTEMPT_TIMEOUT),
                client.stream(
                    "POST", target, content=body, headers=headers, extensions=extensions
                ) as response,
            ):
                status = response.status_code
            if status >= 300:
                error = f"the receiver answered {status}"
                retry = status >= 500 or status in (408, 429)
        except Refused as exc:
            error, retry = str(exc), False
        except TimeoutError:
            error = f"no answer within {ATTEMPT_TIMEOUT:g} s"
        except Exception as exc:  # whatever the receiver or the URL does: log it, go on
            kind = type(exc).__name__
            if kind in _TIMED_OUT:  # (its text is empty: "ReadTimeout: " was all it said)
                error = f"{_TIMED_OUT[kind]} within {TIMEOUT:g} s"
            else:
                error = printable(f"{kind}: {exc}".rstrip(": "))[:300]
        metrics.WEBHOOK_POSTS.labels("delivered" if error is None else "failed").inc()
        try:
            await writer.submit(delivery_job(alert.id, attempt, clock(), status, error))
        except Exception:  # the log is informative: a failed write must not stop retries
            log.exception("could not log a webhook delivery")
        if error is None:
            return True
        if not retry:
            return False
    return False

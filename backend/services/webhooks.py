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
from urllib.parse import urlsplit

import httpx
import msgspec

from backend import metrics
from backend.db import watches as store
from backend.db.writer import WriteContext, Writer, cache_safe
from shared.text import printable
from shared.watches import AlertInfo

log = logging.getLogger(__name__)

RETRY_AFTER = (0.0, 1.0, 4.0, 15.0)
"""Delays before each attempt, in units of the ``webhook_retry_delay`` setting."""
TIMEOUT = 5.0
PRIVATE = (
    "refused: {host} is not a public address; set LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE=1 on the"
    " server to post to internal hosts"
)


class Refused(Exception):
    """The URL may not be posted to (not retried)."""


def payload(alert: AlertInfo) -> bytes:
    """``text`` for Slack, ``content`` for Discord, and the alert itself for scripts."""
    line = f"{alert.title} ({alert.detail})"
    return msgspec.json.encode(
        {
            "text": line,
            "content": line[:2000],  # Discord's limit
            "username": "livestudio",
            "alert": alert,
        }
    )


async def _check_public(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise Refused(PRIVATE.format(host=host))


def delivery_job(
    alert_id: int, attempt: int, now: float, status: int | None, error: str | None
) -> Callable[[WriteContext], None]:
    """A writer job that logs one attempt."""

    @cache_safe
    def job(ctx: WriteContext) -> None:
        store.record_delivery(ctx.conn, alert_id, attempt, now, status, error)

    return job


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
            if not allow_private:
                await _check_public(url)
            response = await client.post(
                url, content=body, headers={"Content-Type": "application/json"}
            )
            status = response.status_code
            if status >= 300:
                error = f"the receiver answered {status}"
                retry = status >= 500 or status in (408, 429)
        except Refused as exc:
            error, retry = str(exc), False
        except (httpx.HTTPError, ConnectionError, OSError) as exc:
            error = printable(f"{type(exc).__name__}: {exc}")[:300]
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

"""How many connections one client address may hold open (HTTP and SSH each).

Idle connections cost the server a file descriptor each: a thousand from one host used
them up, and every request from anywhere failed while they were held.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from backend.services.throttle import client_key
from shared.api import TUI_CONNECTIONS

log = logging.getLogger("livestudio")

WARN_EVERY = 60.0
"""Seconds between two warnings about one address (one host must not flood the log)."""


own_tuis: Counter[str] = Counter()
"""This process's TUIs served over SSH, by ``connection_key`` of the address they reach its HTTP
API from (the server's own): each may hold ``TUI_CONNECTIONS`` more there. Counted against
that address's share alone, every SSH user's TUIs together were refused past ~64 open."""


def connection_key(address: str) -> str:
    """Whom a connection from ``address`` counts against, and the TUIs' allowance is filed
    under: ``loopback`` for any loopback address (one host; a connection to 127.0.0.2 comes
    from 127.0.0.1, to ``::`` from ``::ffff:127.0.0.1``), else ``client_key`` (an IPv6
    host's /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return "loopback" if ip.is_loopback else client_key(str(ip))


@dataclass
class ConnectionLimit:
    """Open connections by client address, at most ``per_address`` each (0: no limit),
    and ``TUI_CONNECTIONS`` more for each of ``tuis`` open from an address."""

    what: str
    """What the connections are, for the log (``HTTP``, ``SSH``)."""
    per_address: int
    tuis: Counter[str] | None = None
    open: Counter[str] = field(default_factory=Counter)
    _warned: dict[str, float] = field(default_factory=dict)

    def admit(self, address: str) -> bool:
        """Count one more connection from ``address``, unless it holds its share already.

        An IPv6 client counts by its /64, as login throttling does (one host holds a whole
        /64 to take addresses from), and every loopback address as one (``connection_key``): the
        TUIs' allowance is the whole host's, not one more share per loopback address."""
        share = self.per_address
        key = connection_key(address)
        if share and self.tuis:
            share += TUI_CONNECTIONS * self.tuis[key]
        if share and self.open[key] >= share:
            self._warn(key)
            return False
        self.open[key] += 1
        return True

    def release(self, address: str) -> None:
        """One connection ``admit`` counted has closed."""
        key = connection_key(address)
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]

    def _warn(self, address: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(address, -WARN_EVERY) < WARN_EVERY:
            return
        if len(self._warned) > 10_000:  # (many addresses refused: forget the old ones)
            self._warned = {a: t for a, t in self._warned.items() if now - t < WARN_EVERY}
        self._warned[address] = now
        log.warning(
            "%s: %s holds %d connections, refused more (LIVESTUDIO_CONNECTIONS_PER_ADDRESS;"
            " said once a minute)",
            self.what,
            address,
            self.per_address,
        )

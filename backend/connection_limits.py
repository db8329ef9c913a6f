"""How many connections one client address may hold open (HTTP and SSH each).

Idle connections cost the server a file descriptor each: a thousand from one host used
them up, and every request from anywhere failed while they were held.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("livestudio")

WARN_EVERY = 60.0
"""Seconds between two warnings about one address (one host must not flood the log)."""


@dataclass
class ConnectionLimit:
    """Open connections by client address, at most ``per_address`` each (0: no limit)."""

    what: str
    """What the connections are, for the log (``HTTP``, ``SSH``)."""
    per_address: int
    open: Counter[str] = field(default_factory=Counter)
    _warned: dict[str, float] = field(default_factory=dict)

    def admit(self, address: str) -> bool:
        """Count one more connection from ``address``, unless it holds its share already."""
        if self.per_address and self.open[address] >= self.per_address:
            self._warn(address)
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        """One connection ``admit`` counted has closed."""
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

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

"""The TUI's one clock: relative times, highlights and ages all read it.

One place to read the time is what lets the snapshot tests freeze it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    """UNIX time, in seconds."""
    return time.time()


def utcnow() -> datetime:
    """The current time as an aware datetime."""
    return datetime.fromtimestamp(now(), UTC)

"""What every storage module shares: how times are stored and read back."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = "((julianday('now') - 2440587.5) * 86400.0)"
"""SQL for the current UNIX time with sub-second precision (``unixepoch('subsec')`` needs
SQLite 3.42)."""


def ts(value: float | None) -> datetime | None:
    """A stored UNIX time as an aware datetime."""
    return None if value is None else datetime.fromtimestamp(value, UTC)

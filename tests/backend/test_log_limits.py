"""Repeated log lines while a service is away: one line in a while, with a count."""

from __future__ import annotations

import logging
import time

from backend.log_limits import SaidEvery


def test_a_repeated_warning_is_said_once_then_counted_in_the_next() -> None:
    said: list[str] = []
    limiter = SaidEvery(seconds=0.2)

    def warn(detail: str) -> None:
        record = logging.LogRecord(
            "psycopg.pool", logging.WARNING, "", 0, "error: %s", (detail,), None
        )
        if limiter.filter(record):
            said.append(record.getMessage())

    for attempt in range(50):
        warn(f"refused #{attempt}")
    assert said == ["error: refused #0"]
    time.sleep(0.25)
    warn("refused again")
    assert len(said) == 2 and said[1].startswith("error: refused again (and 49 more like it in")
    other = logging.LogRecord("x", logging.WARNING, "", 0, "another thing", (), None)
    assert limiter.filter(other)  # another message is its own

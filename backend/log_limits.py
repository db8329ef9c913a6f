"""Log lines that repeat while something is down, said once in a while with a count."""

from __future__ import annotations

import logging
import math
import time

SAID_EVERY = 10.0
"""Seconds between two lines of one kind (the ones between are counted in the next)."""
LIMITED = (
    "psycopg.pool",
    "backend.db.writer",
    "backend.services.sweeper",
    "backend.services.watcher",
)
"""Loggers that say the same thing at every try while the database is away: the pool at
each reconnection attempt, the writer at each failed batch (60 warnings, 150 lines, for
a 12-second outage), the sweeper and the watch evaluator at each round."""


class SaidEvery(logging.Filter):
    """Lets a record through at most once every ``seconds`` per logger, level and message
    template (not its arguments: each attempt's error differs in detail)."""

    def __init__(self, seconds: float = SAID_EVERY) -> None:
        super().__init__()
        self.seconds = seconds
        self._said: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        said_at, unsaid = self._said.get(key, (-math.inf, 0))
        if now - said_at < self.seconds:
            self._said[key] = (said_at, unsaid + 1)
            return False
        if unsaid:  # (no "%" added: the template still takes the record's arguments)
            record.msg = f"{record.msg} (and {unsaid} more like it in {now - said_at:.0f} s)"
        self._said[key] = (now, 0)
        return True


def limit_repeats() -> None:
    """Install ``SaidEvery`` on the loggers that repeat themselves while a service is down."""
    for name in LIMITED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SaidEvery) for f in logger.filters):  # (once a process)
            logger.addFilter(SaidEvery())

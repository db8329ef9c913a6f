"""What the writer does when the disk fills up: a reserve to fall back on, and recovery.

A full disk must not stop people from logging in and looking (a session is a small row)
nor leave the server stuck once space comes back. So the server keeps a reserve file
beside the database; the first write that finds the disk full deletes it, which frees
room for logins and the WAL checkpoint, and ingestion is refused up front while free
space is below the reserve plus ``LOW_WATER`` (so the reserve is not eaten by training
runs). Whatever is freed beyond that is used at once, however little it is; once there
is room for a new reserve too, it is made again and the episode is over.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger("livestudio")

LOW_WATER = 1 << 20
"""Free space, beyond the reserve's, below which posts are refused without trying."""
CHECK_EVERY = 1.0
"""How often, at most, free space is measured while the disk is full."""


class DiskGuard:
    """The reserve file and the disk-full state of one database."""

    def __init__(self, db: Path, reserve_bytes: int) -> None:
        self.reserve = db.with_name(db.name + ".reserve")
        self.reserve_bytes = reserve_bytes
        self.full = False
        self._free = 0
        self._checked_at = 0.0

    def start(self) -> None:
        """Make the reserve if there is room for it (best effort)."""
        self._make_reserve()

    def _make_reserve(self) -> bool:
        if self.reserve_bytes <= 0:
            return True
        try:
            if self.reserve.exists() and self.reserve.stat().st_size >= self.reserve_bytes:
                return True
            # Private like the database beside it (it holds only zeros, but an audit of
            # the folder should find nothing readable by others).
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as f:
                # Written, not truncated: a sparse file would reserve nothing.
                chunk = b"\0" * (1 << 20)
                left = self.reserve_bytes
                while left > 0:
                    left -= f.write(chunk[: min(left, len(chunk))])
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError:
            self.reserve.unlink(missing_ok=True)
            return False

    def disk_full(self) -> None:
        """A write found the disk full: give up the reserve, log once per episode."""
        if not self.full:
            self.full = True
            self._checked_at = 0.0
            log.error(
                "the disk holding %s is full: new data is refused (507) until space is freed",
                self.reserve.parent,
            )
        self.reserve.unlink(missing_ok=True)

    def refuse_posts(self) -> bool:
        """Whether a post should be refused without trying (the disk is still full)."""
        if not self.full:
            return False
        now = time.monotonic()
        if now - self._checked_at >= CHECK_EVERY:
            self._checked_at = now
            try:
                self._free = shutil.disk_usage(self.reserve.parent).free
            except OSError:
                self._free = 0
            if self._free >= LOW_WATER + 2 * self.reserve_bytes and self._make_reserve():
                self.full = False
                log.warning("disk space is back: accepting new data again")
                return False
        # The reserve's worth of space stays for logins; anything freed beyond it is used.
        return self._free < LOW_WATER + self.reserve_bytes

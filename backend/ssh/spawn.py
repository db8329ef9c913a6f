"""``python -m backend.ssh.spawn ARGS…``: become the terminal's process, then run the TUI.

Started on a pseudo-terminal by an SSH session: it makes a session of its own with that
terminal as its controlling terminal (so a window resize arrives as SIGWINCH), then
replaces itself with ``livestudio tui ARGS…``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import sys
import termios

PR_SET_PDEATHSIG = 1


def main() -> None:
    """Take the terminal on stdin as the controlling terminal; exec the TUI."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Should the server itself die (kill -9), the TUI goes with it instead of lingering.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.execv(sys.executable, [sys.executable, "-m", "cli.main", "tui", *sys.argv[1:]])


if __name__ == "__main__":
    main()

"""One SSH session's TUI: its own ``livestudio tui`` process on a pseudo-terminal.

Each session runs the TUI in a process of its own, logged in with a session made for the
key's user, talking to this server over loopback HTTP like any other TUI. A slow terminal
only fills its own pseudo-terminal (the relay waits on the SSH channel's flow control), a
crash ends only that process, and closing the session kills it and forgets its login.
Everything a session holds (pseudo-terminal, process, folder) is released whatever ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import asyncssh

READ_SIZE = 65536
MAX_WIDTH, MAX_HEIGHT = 1000, 500
"""The largest window a session gets (a client may claim any size)."""
MAX_ENV_VALUE = 256


RESTORE_TERMINAL = (
    b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"  # mouse reporting off
    b"\x1b[?1004l\x1b[?2004l"  # focus events, bracketed paste off
    b"\x1b[?1049l\x1b[?25h\x1b[0m"  # the main screen back, the cursor shown, plain text
)
"""What a TUI cut off mid-screen leaves to undo on the user's terminal."""


def set_size(fd: int, width: int, height: int) -> None:
    """Tell the pseudo-terminal its size, within bounds (its process gets SIGWINCH)."""
    width = max(1, min(width or 80, MAX_WIDTH))
    height = max(1, min(height or 24, MAX_HEIGHT))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def client_env(process: asyncssh.SSHServerProcess[bytes]) -> dict[str, str]:
    """TERM, colour depth and NO_COLOR as the SSH client sent them (short values only)."""
    term = process.get_terminal_type() or "xterm-256color"
    env = {"TERM": term if len(term) <= 64 and term.isprintable() else "xterm-256color"}
    sent = {str(k): str(v) for k, v in (process.env or {}).items()}
    for name in ("NO_COLOR", "COLORTERM", "LANG", "LC_ALL"):
        value = sent.get(name)
        if value is not None and len(value) <= MAX_ENV_VALUE and value.isprintable():
            env[name] = value
    return env


def exit_status(returncode: int | None) -> int:
    """A process's return code as a shell reports it (a signal N is 128 + N)."""
    if returncode is None:
        return 0
    return 128 - returncode if returncode < 0 else returncode


def _write_session(folder: Path, server_url: str, username: str, token: str) -> None:
    """The session the TUI starts with, in a folder only this server's user can read."""
    folder.mkdir(mode=0o700, parents=True)
    session_file = folder / "session.json"
    session_file.touch(mode=0o600)
    session_file.write_text(
        json.dumps({"server": server_url, "username": username, "token": token})
    )


IDLE_WARNING = 60.0
"""Seconds before an idle session is closed that its TUI warns (a quarter of a shorter
``LIVESTUDIO_SSH_IDLE_TIMEOUT``)."""
IDLE_SIGNAL = signal.SIGUSR1
"""Tells the TUI its session is about to be closed for being idle."""


def _signal(child: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the TUI's process group (its own session), or the process if it has none yet."""
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)


async def _write_all(fd: int, data: bytes) -> None:
    """Write everything to a non-blocking pseudo-terminal, waiting while it is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await asyncio.sleep(0.005)  # the TUI reads its input; a long paste waits for it
            continue
        view = view[written:]


async def run_tui(
    process: asyncssh.SSHServerProcess[bytes],
    server_url: str,
    public_url: str,
    username: str,
    session_token: str,
    project: str | None,
    idle_timeout: float,
    folder: Path,
    muted: asyncio.Event | None = None,
) -> int:
    """Run the TUI for the SSH channel in ``folder`` until either side ends; the exit status.

    Once ``muted`` is set the TUI's output no longer reaches the client: the session is
    being cut, and a frame after the terminal was handed back would take it again.
    """
    master = slave = -1
    child: asyncio.subprocess.Process | None = None
    ended_by_us = False
    try:
        await asyncio.to_thread(_write_session, folder, server_url, username, session_token)
        width, height, _, _ = process.get_terminal_size()
        master, slave = pty.openpty()
        set_size(master, width, height)
        command = [sys.executable, "-m", "backend.ssh.spawn", "--server", server_url]
        if project:
            command.append(f"--project={project}")  # a name starting with "-" stays a value
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(folder),
            "LIVESTUDIO_CONFIG_DIR": str(folder),
            **client_env(process),
            "LIVESTUDIO_OVER_SSH": "1",  # bound to this session: no login form
            "LIVESTUDIO_PUBLIC_URL": public_url,  # (server_url is its own address)
        }
        child = await asyncio.create_subprocess_exec(
            *command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(folder)
        )
        os.close(slave)
        slave = -1
        os.set_blocking(master, False)
        last_input = time.monotonic()

        async def to_client() -> None:
            loop = asyncio.get_running_loop()
            readable = asyncio.Event()
            loop.add_reader(master, readable.set)
            try:
                while True:
                    await readable.wait()
                    readable.clear()
                    try:
                        data = os.read(master, READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:  # the TUI exited: its terminal is gone
                        return
                    if not data:
                        return
                    if muted is not None and muted.is_set():
                        continue
                    process.stdout.write(data)
                    await process.stdout.drain()  # a slow client slows only this session
            finally:
                loop.remove_reader(master)

        async def from_client() -> None:
            nonlocal last_input
            while True:
                try:
                    data = await process.stdin.read(READ_SIZE)
                except asyncssh.TerminalSizeChanged as change:
                    set_size(master, change.width, change.height)
                    continue
                if not data:
                    return
                last_input = time.monotonic()
                await _write_all(master, data)

        async def idle_watch() -> None:
            # Warned first (SIGUSR1: the TUI says so), so that someone watching a long run
            # without touching a key can keep the session: it used to close unannounced.
            warning = min(IDLE_WARNING, idle_timeout / 4)
            warned_for = None
            while True:
                left = last_input + idle_timeout - time.monotonic()
                if left <= 0:
                    break
                if left <= warning and warned_for != last_input:
                    warned_for = last_input
                    if child is not None:
                        _signal(child, IDLE_SIGNAL)
                await asyncio.sleep(left if warned_for == last_input else left - warning)
            if muted is not None:
                muted.set()
            process.stdout.write(RESTORE_TERMINAL)
            process.stderr.write(b"\r\nlivestudio: closed after being idle.\r\n")

        tasks = [
            asyncio.create_task(to_client()),
            asyncio.create_task(from_client()),
            asyncio.create_task(idle_watch()),
            asyncio.create_task(child.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        ended_by_us = child.returncode is None
    finally:
        if child is not None and child.returncode is None:
            _signal(child, signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 3)
            except TimeoutError:
                _signal(child, signal.SIGKILL)
                await child.wait()
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
        await asyncio.to_thread(shutil.rmtree, folder, True)
    return 0 if ended_by_us or child is None else exit_status(child.returncode)

"""One SSH session's TUI: its own ``livestudio tui`` process on a pseudo-terminal.

Each session runs the TUI in a process of its own, logged in with a session made for the
key's user, talking to this server over loopback HTTP like any other TUI. A slow terminal
only fills its own pseudo-terminal (the relay waits on the SSH channel's flow control), a
crash ends only that process, and closing the session kills it and forgets its login.
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
import tempfile
import termios
import time
from pathlib import Path

import asyncssh

READ_SIZE = 65536


def set_size(fd: int, width: int, height: int) -> None:
    """Tell the pseudo-terminal its size (its process gets SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def client_env(process: asyncssh.SSHServerProcess[bytes]) -> dict[str, str]:
    """TERM, colour depth and NO_COLOR as the SSH client sent them."""
    env = {"TERM": process.get_terminal_type() or "xterm-256color"}
    sent = {str(k): str(v) for k, v in (process.env or {}).items()}
    for name in ("NO_COLOR", "COLORTERM", "LANG", "LC_ALL"):
        if name in sent:
            env[name] = sent[name]
    return env


async def run_tui(
    process: asyncssh.SSHServerProcess[bytes],
    server_url: str,
    username: str,
    session_token: str,
    project: str | None,
    idle_timeout: float,
) -> int:
    """Run the TUI for the SSH channel until either side ends; returns the exit status."""
    config = Path(tempfile.mkdtemp(prefix="livestudio-ssh-"))
    session_file = config / "session.json"
    session_file.write_text(
        json.dumps({"server": server_url, "username": username, "token": session_token})
    )
    session_file.chmod(0o600)
    width, height, _, _ = process.get_terminal_size()
    master, slave = pty.openpty()
    set_size(master, width or 80, height or 24)
    command = [sys.executable, "-m", "backend.ssh.spawn", "--server", server_url]
    if project:
        command += ["--project", project]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config),
        "LIVESTUDIO_CONFIG_DIR": str(config),
        **client_env(process),
    }
    child = await asyncio.create_subprocess_exec(
        *command,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=str(config),
    )
    os.close(slave)
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
            os.write(master, data)

    async def idle_watch() -> None:
        while True:
            left = last_input + idle_timeout - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(left)
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
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                await child.wait()
        os.close(master)
        shutil.rmtree(config, ignore_errors=True)
    return child.returncode or 0

"""SSH sessions benchmark: what one idle and one busy TUI session over SSH costs.

    python -m bench.ssh [--sessions 4] [--seconds 10] [--steps-per-second 10]

Starts a real server with ``--ssh-port``, opens SSH sessions with asyncssh (a PTY each,
straight into a project), and measures the per-session TUI processes: resident memory and
CPU while idle, then CPU while a run posts ``--steps-per-second`` steps (two posts each, as
DVCLive) that every session draws; and from that, how many busy sessions one core serves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh
import httpx

from cli import admin

HTTP_PORT, SSH_PORT = 18481, 18482
SHA = "f6b4c06e5e54e1856eff03bf0e464ea0bc86da8f"


def tui_pids() -> list[int]:
    """The TUI processes of this benchmark's sessions."""
    found = subprocess.run(
        ["pgrep", "-f", f"server http://127.0.0.1:{HTTP_PORT}"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def body(step: int, plots: bool) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "data",
        "repo_url": "git@github.com:acme/bench-ssh.git",
        "baseline_sha": SHA,
        "name": "watched",
        "client": "dvclive",
        "step": step,
    }
    if plots:
        base["plots"] = {
            "dvclive/plots/metrics/loss.tsv": {"data": [{"step": step, "loss": 1 / (step + 1)}]}
        }
    else:
        base["metrics"] = {"m.json": {"data": {"loss": 1 / (step + 1), "step": step}}}
    return base


async def drain(process: asyncssh.SSHClientProcess[bytes]) -> None:
    """Read a session's screen output as a terminal would, as fast as it comes."""
    while await process.stdout.read(65536):
        pass


async def measure(
    sessions: int, seconds: float, rate: float, key: asyncssh.SSHKey, token: str
) -> None:
    conns, tasks = [], []
    for _ in range(sessions):
        conn = await asyncssh.connect(
            "127.0.0.1", SSH_PORT, client_keys=[key], known_hosts=None, username="bench"
        )
        process = await conn.create_process(
            "bench-ssh", term_type="xterm-256color", term_size=(120, 40), encoding=None
        )
        conns.append(conn)
        tasks.append(asyncio.create_task(drain(process)))
    await asyncio.sleep(5)  # the TUIs start and draw their first screens
    pids = tui_pids()
    rss = [rss_mb(pid) for pid in pids]
    before = {pid: cpu_seconds(pid) for pid in pids}
    await asyncio.sleep(seconds)
    idle = [(cpu_seconds(pid) - before[pid]) / seconds for pid in pids]
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    step = 1
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{HTTP_PORT}", headers={"Authorization": f"token {token}"}
    ) as client:
        while time.monotonic() - started < seconds:
            await client.post("/api/live", json=body(step, plots=False))
            await client.post("/api/live", json=body(step, plots=True))
            step += 1
            await asyncio.sleep(max(0.0, started + step / rate - time.monotonic()))
    elapsed = time.monotonic() - started
    busy = [(cpu_seconds(pid) - before[pid]) / elapsed for pid in pids]
    for task in tasks:
        task.cancel()
    for conn in conns:
        conn.close()
    average_busy = sum(busy) / len(busy)
    print(f"{len(pids)} sessions (120x40), each its own TUI process:")
    print(f"  memory per session: {sum(rss) / len(rss):.0f} MB resident")
    print(f"  idle: {sum(idle) / len(idle):.1%} of a core per session")
    print(
        f"  busy ({rate:.0f} steps/s, {2 * rate:.0f} posts/s, every step drawn):"
        f" {average_busy:.1%} of a core per session"
    )
    print(f"  busy sessions one core serves: about {1 / average_busy:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps-per-second", type=float, default=10.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="livestudio-bench-ssh-"))
    db = tmp / "b.db"
    admin.add_user(db, "bench", "bench-password", admin=True)
    token = admin.create_token(db, "bench").token
    key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp / "k.pub").write_bytes(key.export_public_key())
    admin.add_ssh_key(db, "bench", tmp / "k.pub")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--db",
            str(db),
            "--port",
            str(HTTP_PORT),
            "--ssh-port",
            str(SSH_PORT),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                httpx.post(
                    f"http://127.0.0.1:{HTTP_PORT}/api/live",
                    json=body(0, plots=False),
                    headers={"Authorization": f"token {token}"},
                    timeout=1,
                )
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        asyncio.run(measure(args.sessions, args.seconds, args.steps_per_second, key, token))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

"""Ingestion benchmark (SPEC §10): livestudio against a bare Litestar handler, same run.

    python -m bench.ingest [--seconds 3] [--concurrency 1 8 64]
    python -m bench.ingest --seconds 3600 --concurrency 8 --modes keep-alive   # soak

Starts both servers (each pinned to CPU 0 when the machine has two or more), drives them
from this process (pinned to CPU 1) with realistic DVCLive ``data`` posts — a metrics post
and a plot-rows post per step, each client its own experiment — with keep-alive and with a
new connection per post as DVCLive does, and prints requests/s, p50 and p99 latency,
the livestudio/bare ratio, and the server's resident memory before and after each run
(run it for an hour to see that memory stays flat under sustained load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec

from cli import admin

SHA = "f6b4c06e5e54e1856eff03bf0e464ea0bc86da8f"


def bodies(name: str) -> Iterator[bytes]:
    """The two posts DVCLive makes per step, forever, with new steps."""
    base = {
        "type": "data",
        "repo_url": "git@github.com:acme/bench.git",
        "baseline_sha": SHA,
        "name": name,
        "client": "dvclive",
    }
    step = 0
    while True:
        loss, acc = 1.0 / (step + 1), step / (step + 10)
        yield msgspec.json.encode(
            {
                **base,
                "step": step,
                "params": {
                    "dvclive/params.yaml": {"lr": 0.01, "epochs": 100, "model": {"layers": 2}}
                },
                "metrics": {
                    "dvclive/metrics.json": {
                        "data": {
                            "train": {"loss": loss, "acc": acc},
                            "val": {"loss": loss * 1.1},
                            "step": step,
                        }
                    }
                },
            }
        )
        yield msgspec.json.encode(
            {
                **base,
                "step": step,
                "plots": {
                    "dvclive/plots/metrics/train/loss.tsv": {
                        "data": [{"step": step, "loss": loss}]
                    },
                    "dvclive/plots/metrics/train/acc.tsv": {"data": [{"step": step, "acc": acc}]},
                    "dvclive/plots/metrics/val/loss.tsv": {
                        "data": [{"step": step, "loss": loss * 1.1}]
                    },
                },
            }
        )
        step += 1


def request(body: bytes, token: str, keep_alive: bool) -> bytes:
    head = (
        "POST /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: token {token}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def worker(
    port: int,
    posts: Iterator[bytes],
    token: str,
    keep_alive: bool,
    until: float,
    latencies: list[float],
) -> int:
    errors = 0
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for body in posts:
        if time.perf_counter() >= until:
            break
        started = time.perf_counter()
        if conn is None:
            conn = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = conn
        writer.write(request(body, token, keep_alive))
        status = await read_response(reader)
        latencies.append(time.perf_counter() - started)
        errors += status != 200
        if not keep_alive:
            writer.close()
            conn = None
    if conn is not None:
        conn[1].close()
    return errors


@dataclass
class Tally:
    """Requests, time and latencies of one server, summed over the rounds."""

    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def figures(self) -> tuple[float, float, float]:
        """Requests/s, p50 ms, p99 ms."""
        ordered = sorted(self.latencies)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
        return self.requests / self.seconds, statistics.median(ordered) * 1000, p99 * 1000


async def measure(
    port: int,
    token: str,
    clients: list[Iterator[bytes]],
    keep_alive: bool,
    seconds: float,
    tally: Tally,
) -> None:
    """One round: every client posts as fast as it is answered for ``seconds``."""
    latencies: list[float] = []
    start = time.perf_counter()
    errors = await asyncio.gather(
        *(worker(port, posts, token, keep_alive, start + seconds, latencies) for posts in clients)
    )
    tally.seconds += time.perf_counter() - start
    tally.requests += len(latencies)
    tally.errors += sum(errors)
    tally.latencies += latencies


def rss_mb(pid: int) -> float:
    """The resident memory of a process, in MB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def start(cmd: list[str], port: int, cpu: int | None) -> subprocess.Popen[bytes]:
    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    proc = subprocess.Popen(
        cmd, preexec_fn=pin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            httpx.post(f"http://127.0.0.1:{port}/api/live", content=b"{}", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"server did not start: {cmd}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per server and run")
    parser.add_argument("--rounds", type=int, default=3, help="alternations per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--modes", nargs="+", choices=["keep-alive", "new"], default=["keep-alive", "new"]
    )
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="livestudio-bench-"))
    db = tmp / "bench.db"
    admin.add_user(db, "bench", "bench-password", admin=True)
    token = admin.create_token(db, "bench").token
    live_port, bare_port = 18431, 18432
    servers = [
        start(
            [sys.executable, "-m", "cli.main", "serve", "--db", str(db), "--port", str(live_port)],
            live_port,
            server_cpu,
        ),
        start([sys.executable, "-m", "bench.bare", str(bare_port)], bare_port, server_cpu),
    ]
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    try:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        print(
            f"{'connections':<12}{'conc':>5}  {'livestudio req/s':>16} {'p50 ms':>7} {'p99 ms':>7}"
            f"  {'bare req/s':>10} {'p50 ms':>7} {'p99 ms':>7}  {'ratio':>6}  server RSS MB"
        )
        run = 0
        for keep_alive in [mode == "keep-alive" for mode in args.modes]:
            for concurrency in args.concurrency:
                run += 1
                rss_before = rss_mb(servers[0].pid)
                # Alternate short rounds of both servers, so drift on the machine during
                # the run weighs on both sides alike; each client keeps its experiment
                # and its step count from round to round.
                clients = [bodies(f"r{run}-{i}") for i in range(concurrency)]
                yardstick = [bodies(f"r{run}-{i}") for i in range(concurrency)]
                live_tally, bare_tally = Tally(), Tally()
                for _ in range(args.rounds):
                    for port, posts, tally in (
                        (live_port, clients, live_tally),
                        (bare_port, yardstick, bare_tally),
                    ):
                        asyncio.run(
                            measure(
                                port, token, posts, keep_alive, args.seconds / args.rounds, tally
                            )
                        )
                live = (*live_tally.figures(), live_tally.errors)
                bare = bare_tally.figures()
                mode = "keep-alive" if keep_alive else "new per post"
                ratio = live[0] / bare[0]
                print(
                    f"{mode:<12}{concurrency:>5}  {live[0]:>16,.0f} {live[1]:>7.2f} {live[2]:>7.2f}"
                    f"  {bare[0]:>10,.0f} {bare[1]:>7.2f} {bare[2]:>7.2f}  {ratio:>6.0%}"
                    f"  {rss_before:.0f} → {rss_mb(servers[0].pid):.0f}"
                    + (f"  ({live[3]} errors)" if live[3] else "")
                )
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait()
    print(f"server pinned to CPU {server_cpu}, load generator to CPU {client_cpu}; database {db}")


if __name__ == "__main__":
    main()

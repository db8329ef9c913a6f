"""Read-side benchmark (SPEC §10): big project list, downsampling, fan-out latency.

    python -m bench.read [--experiments 10000] [--points 1000000] [--subscribers 100]

Fills a database directly (through the same write jobs the server uses), starts the
real server on it, and prints: the time to list a project of N experiments, the time to
downsample a series of M points to 500, to read it whole (with arrival times) and
downsampled to 5,000 (from the points themselves; for each, how long a small read made
meanwhile waits, and for the whole read the server's peak memory), the
post-to-subscriber latency over the
event stream with S subscribers connected, and, on a server started again after a pause
(every run silent by then), how long until all are swept Stopped and how long posts wait
meanwhile. The subscribers read at the socket level and run on another CPU than the
server, so they are never the limit (it prints the share of their CPU they and the poster
used); the first post, which warms the server's caches up, is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import cast

import httpx

from backend.db import repository
from backend.db.connection import connect_sync
from backend.db.migrations import migrate
from backend.db.writer import run_in_transaction
from backend.services import ingest
from bench.ingest import cpu_seconds
from cli import admin

SHA = "f6b4c06e5e54e1856eff03bf0e464ea0bc86da8f"
PORT = 18461


def fill(db: Path, experiments: int, points: int) -> str:
    admin.add_user(db, "bench", "bench-password", admin=True)
    token = admin.create_token(db, "bench").token
    with closing(connect_sync(db)) as conn:
        migrate(conn)
        for start in range(0, experiments, 500):
            jobs = []
            for i in range(start, min(experiments, start + 500)):
                body = {
                    "type": "data",
                    "repo_url": "git@github.com:acme/bench.git",
                    "baseline_sha": SHA,
                    "name": f"exp-{i:05d}",
                    "client": "dvclive",
                    "step": 10,
                    "params": {"params.yaml": {"lr": 0.001 * (i % 7), "layers": i % 5}},
                    "metrics": {"m.json": {"data": {"loss": 1 / (i + 1), "acc": i / experiments}}},
                }
                parsed = ingest.parse(json.dumps(body).encode())
                jobs.append(ingest.ingest_job(token, parsed, time.time))
            run_in_transaction(conn, jobs)
        series = conn.execute(
            "INSERT INTO series (experiment_id, name) VALUES (1, 'long') RETURNING id"
        ).fetchone()[0]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO points (series_id, step, value, arrived_at) VALUES (?, ?, ?, 0)",
            ((series, step, (step % 1000) / 1000) for step in range(points)),
        )
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        repository.summarise_series(conn, series)  # what the writer does as blocks fill up
        conn.execute("COMMIT")
    return token


def timed(client: httpx.Client, path: str, runs: int = 7) -> tuple[float, httpx.Response]:
    times, response = [], None
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
    assert response is not None and response.status_code == 200, response.text if response else ""
    return statistics.median(times) * 1000, response


class _Subscriber(asyncio.Protocol):
    """One event-stream client at the socket level: the time each step's event arrives.

    Parsing 100 streams with a full HTTP client costs the benchmark more than the server
    (the client became the limit), so this reads the bytes as they come and notes when a
    ``"step":N`` first shows up in them. Each SSE event is one HTTP chunk, so a step is
    never split between reads of its own chunk and the next.
    """

    def __init__(self, request: bytes, seen: Callable[[int, float], None]) -> None:
        self.request = request
        self.seen = seen
        self.connected = asyncio.get_running_loop().create_future()
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        data = self.tail + data
        for match in _STEP.finditer(data):
            self.seen(int(match.group(1)), now)
        self.tail = data[-64:]
        if not self.connected.done() and b": connected" in data:
            self.connected.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("the stream ended before it connected"))


_STEP = re.compile(rb'"step":(\d+)')


def _same(subscriber: _Subscriber) -> _Subscriber:
    return subscriber


async def fan_out(
    session: str, token: str, subscribers: int, posts: int, server_pid: int
) -> tuple[list[float], float]:
    """Post ``posts`` metrics; the latency from each post to each subscriber's copy, and
    the server's CPU seconds from the first counted post until every copy arrived."""
    latencies: list[float] = []
    sent: dict[int, float] = {}
    got: set[tuple[int, int]] = set()
    all_in = asyncio.Event()

    def seen_by(index: int) -> Callable[[int, float], None]:
        def seen(step: int, when: float) -> None:
            if step in sent and (index, step) not in got:
                got.add((index, step))
                latencies.append(when - sent[step])
                if len(latencies) == posts * subscribers:
                    all_in.set()

        return seen

    request = (
        "GET /api/projects/1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {session}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    streams = []
    for index in range(subscribers):
        subscriber = _Subscriber(request, seen_by(index))
        transport, _ = await loop.create_connection(
            functools.partial(_same, subscriber), "127.0.0.1", PORT
        )
        streams.append((transport, subscriber))
    await asyncio.wait_for(asyncio.gather(*(p.connected for _, p in streams)), 60)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=60) as client:
        # The first post after start-up pays for cold caches and the client's connection:
        # it warms up and is not counted (the latency of steady posting is measured).
        for step in range(99, 100 + posts):
            body = {
                "type": "data",
                "repo_url": "git@github.com:acme/bench.git",
                "baseline_sha": SHA,
                "name": "exp-00000",
                "client": "dvclive",
                "step": step,
                "metrics": {"m.json": {"data": {"loss": 1 / step}}},
            }
            if step == 100:
                cpu_before = cpu_seconds(server_pid)
            if step >= 100:
                sent[step] = time.perf_counter()
            await client.post("/api/live", json=body, headers={"Authorization": f"token {token}"})
            await asyncio.sleep(0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 5)
        server_cpu = cpu_seconds(server_pid) - cpu_before
    for transport, _ in streams:
        transport.close()
    return latencies, server_cpu


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--posts", type=int, default=40)
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp(prefix="livestudio-bench-")) / "read.db"
    started = time.perf_counter()
    token = fill(db, args.experiments, args.points)
    took = time.perf_counter() - started
    print(f"filled {args.experiments} experiments and {args.points:,} points in {took:.1f} s")
    # As in bench.ingest: the server on one CPU, the clients on another, so neither
    # steals the other's time (on one CPU, both share it).
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, client_cpus = ({cpus[0]}, {cpus[1]}) if len(cpus) > 1 else (set(cpus), set(cpus))
    os.sched_setaffinity(0, client_cpus)
    server = start_server(db, server_cpus)
    try:
        session = httpx.post(
            f"http://127.0.0.1:{PORT}/api/auth/login",
            json={"username": "bench", "password": "bench-password"},
        ).json()["session_token"]
        with httpx.Client(
            base_url=f"http://127.0.0.1:{PORT}",
            headers={"Authorization": f"Bearer {session}"},
            timeout=60,
        ) as client:
            ms, response = timed(client, "/api/projects/1/experiments")
            count = len(response.json())
            print(f"list a project of {count} experiments: median {ms:.1f} ms (target < 100 ms)")
            ms, response = timed(client, "/api/experiments/1/series?names=long&max_points=500")
            got = len(response.json()["long"])
            print(
                f"downsample {args.points:,} points to {got}: median {ms:.1f} ms (target < 50 ms)"
            )
            whole_read(client, server.pid, args.points)
        before, started = _cpu_seconds(), time.perf_counter()
        latencies, server_cpu = asyncio.run(
            fan_out(session, token, args.subscribers, args.posts, server.pid)
        )
        client_share = (_cpu_seconds() - before) / (time.perf_counter() - started)
        if latencies:
            delays = sorted(x * 1000 for x in latencies)
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
            print(
                f"post-to-subscriber latency, {args.subscribers} subscribers,"
                f" {len(delays)} deliveries:"
                f" p50 {statistics.median(delays):.1f} ms, p99 {p99:.1f} ms (target p99 < 25 ms);"
                f" the subscribers and the poster used {client_share:.0%} of a CPU;"
                f" server CPU {server_cpu / len(delays) * 1e6:.0f} µs per event delivered"
                " (posts included)"
            )
    finally:
        server.terminate()
        server.wait()
    sweep_at_start(db, token, server_cpus)


def whole_read(client: httpx.Client, pid: int, points: int) -> None:
    """Read the long series whole (with arrival times), then downsampled to 5,000 points
    (bucketed from the points, not the block summaries), each while a probe reads an
    experiment's details: how long each takes, the server's peak memory, and how long the
    probe waited."""
    peak_before = _peak_rss_mb(pid)
    took, waited, response = _with_probe(client, "/api/experiments/1/series?names=long&times=true")
    got = len(response.json()["long"])
    assert got == points, got
    print(
        f"read {got:,} points whole with times: {took * 1000:.0f} ms,"
        f" {len(response.content) / 1e6:.1f} MB of JSON; server peak memory"
        f" {peak_before:.0f} → {_peak_rss_mb(pid):.0f} MB; an experiment's details read"
        f" meanwhile waited at most {waited * 1000:.0f} ms"
    )
    took, waited, response = _with_probe(
        client, "/api/experiments/1/series?names=long&max_points=5000"
    )
    print(
        f"downsample {points:,} points to {len(response.json()['long']):,}: {took * 1000:.0f} ms;"
        f" an experiment's details read meanwhile waited at most {waited * 1000:.0f} ms"
    )


def _with_probe(client: httpx.Client, path: str) -> tuple[float, float, httpx.Response]:
    """GET ``path`` while another client keeps reading an experiment's details: the
    seconds it took, the probe's longest wait, the response."""
    worst, stop = [0.0], threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=client.base_url, headers=client.headers) as other:
            while not stop.is_set():
                started = time.perf_counter()
                other.get("/api/experiments/2")
                worst[0] = max(worst[0], time.perf_counter() - started)
                time.sleep(0.005)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        started = time.perf_counter()
        response = client.get(path)
        took = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
    assert response.status_code == 200, response.text
    return took, worst[0], response


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_server(db: Path, cpus: set[int], **env: str) -> subprocess.Popen[bytes]:
    """``livestudio serve`` on ``db``, pinned to ``cpus``, once it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--db", str(db), "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return server


def sweep_at_start(db: Path, token: str, cpus: set[int]) -> None:
    """A server started after a long pause: every run is silent and is swept Stopped.

    Prints how long until the last one is stopped, and the slowest of the posts a probe
    run sent every 20 ms meanwhile (they must go on being answered).
    """
    server = start_server(db, cpus, LIVESTUDIO_STALE_AFTER="1", LIVESTUDIO_SWEEP_INTERVAL="1")
    started = time.perf_counter()
    slowest, step = 0.0, 0
    try:
        with closing(connect_sync(db)) as conn, httpx.Client(timeout=120) as client:
            while time.perf_counter() - started < 300:
                body = {
                    "type": "data",
                    "repo_url": "git@github.com:acme/bench.git",
                    "baseline_sha": SHA,
                    "name": "probe",
                    "client": "dvclive",
                    "step": step,
                    "metrics": {"m.json": {"data": {"loss": 1.0}}},
                }
                posted = time.perf_counter()
                client.post(
                    f"http://127.0.0.1:{PORT}/api/live",
                    json=body,
                    headers={"Authorization": f"token {token}"},
                ).raise_for_status()
                slowest = max(slowest, time.perf_counter() - posted)
                step += 1
                running = conn.execute(
                    "SELECT count(*) FROM experiments WHERE status = 'running' AND name != 'probe'"
                ).fetchone()[0]
                if running == 0:
                    break
                time.sleep(0.02)
        took = time.perf_counter() - started
        print(
            f"start-up after a pause, every run silent: all swept Stopped {took:.1f} s after"
            f" start; {step} probe posts meanwhile, the slowest answered in {slowest * 1000:.0f} ms"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

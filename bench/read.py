"""Read-side benchmark (SPEC §10): big project list, downsampling, fan-out latency.

    python -m bench.read [--experiments 10000] [--points 1000000] [--subscribers 100]

Fills a database directly (through the same write jobs the server uses), starts the
real server on it, and prints: the time to list a project of N experiments, the time to
downsample a series of M points to 500, and the post-to-subscriber latency over the
event stream with S subscribers connected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx

from backend.db import repository
from backend.db.connection import connect_sync
from backend.db.migrations import migrate
from backend.db.writer import run_in_transaction
from backend.services import ingest
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


async def fan_out(session: str, token: str, subscribers: int, posts: int) -> list[float]:
    latencies: list[float] = []
    sent: dict[int, float] = {}
    ready = asyncio.Event()
    connected = 0

    async def listen(client: httpx.AsyncClient) -> None:
        nonlocal connected
        async with client.stream(
            "GET", "/api/projects/1/events", headers={"Authorization": f"Bearer {session}"}
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith(": connected"):
                    connected += 1
                    if connected == subscribers:
                        ready.set()
                elif line.startswith("data:") and '"step"' in line:
                    step = json.loads(line[5:])["step"]
                    if step in sent:
                        latencies.append(time.perf_counter() - sent[step])

    limits = httpx.Limits(max_connections=subscribers + 10)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{PORT}", timeout=60, limits=limits
    ) as client:
        tasks = [asyncio.create_task(listen(client)) for _ in range(subscribers)]
        await asyncio.wait_for(ready.wait(), 60)
        for step in range(100, 100 + posts):
            body = {
                "type": "data",
                "repo_url": "git@github.com:acme/bench.git",
                "baseline_sha": SHA,
                "name": "exp-00000",
                "client": "dvclive",
                "step": step,
                "metrics": {"m.json": {"data": {"loss": 1 / step}}},
            }
            sent[step] = time.perf_counter()
            await client.post("/api/live", json=body, headers={"Authorization": f"token {token}"})
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


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
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--db", str(db), "--port", str(PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
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
        latencies = asyncio.run(fan_out(session, token, args.subscribers, args.posts))
        if latencies:
            ms = sorted(x * 1000 for x in latencies)
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(
                f"post-to-subscriber latency, {args.subscribers} subscribers, {len(ms)} deliveries:"
                f" p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms (target p99 < 25 ms)"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

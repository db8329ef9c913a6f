"""The hour-long soak (SPEC §10: the backend's memory stays flat under sustained load).

    python -m bench.soak [--minutes 60] [--connections 8] [--runs 8]

One livestudio server on a fresh SQLite file takes ``bench.ingest``'s DVCLive posts from
``wrk`` without a pause, minute after minute; every minute brings new runs (the last
minute's stop posting and turn Stopped after ``--stale-after``, as real runs come and go),
and one event-stream subscriber reads everything the server publishes. Each minute it
prints the rate, p99, the server's resident memory, the database's size and the events
streamed; at the end, the memory at minute 1, at minute 10 and at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from bench.ingest import Scenario, rss_mb, run_wrk, start
from cli import admin

PORT = 18441


class Subscriber(threading.Thread):
    """Reads ``/api/events`` as the TUI does, counting the events that arrive."""

    def __init__(self, url: str, session: str) -> None:
        super().__init__(daemon=True)
        self.url, self.session, self.events = url, session, 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.session}"}
        while True:  # reconnect if the stream ends (it should not)
            try:
                with httpx.stream(
                    "GET", f"{self.url}/api/events", headers=headers, timeout=None
                ) as resp:
                    for line in resp.iter_lines():
                        if line.startswith("event:"):
                            self.events += 1
            except httpx.HTTPError:
                continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--runs", type=int, default=8, help="runs per connection per minute")
    parser.add_argument("--stale-after", type=float, default=120.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.soak needs wrk, a C load generator: `sudo apt-get install wrk`.")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="livestudio-soak-"))
    db = tmp / "soak.db"
    admin.add_user(db, "bench", "bench-password", admin=True)
    token = admin.create_token(db, "bench").token
    command = [sys.executable, "-m", "cli.main", "serve", "--db", str(db), "--port", str(PORT)]
    server = start([*command, "--stale-after", str(args.stale_after)], PORT, server_cpu)
    url = f"http://127.0.0.1:{PORT}"
    login = httpx.post(
        f"{url}/api/auth/login", json={"username": "bench", "password": "bench-password"}
    )
    subscriber = Subscriber(url, login.json()["session_token"])
    subscriber.start()
    scenario = Scenario("soak", args.connections, args.runs, keep_alive=True)
    memory: list[float] = []
    print(f"{'minute':>6} {'req/s':>8} {'p99 ms':>7} {'RSS MB':>7} {'db MB':>7} {'streamed':>10}")
    try:
        for minute in range(1, args.minutes + 1):
            summary, _ = run_wrk(PORT, scenario, token, f"m{minute}", 60, load_cpu)
            rate = summary["requests"] / (summary["duration_us"] / 1e6)
            memory.append(rss_mb(server.pid))
            size = sum(f.stat().st_size for f in tmp.glob("soak.db*")) / 1e6
            errors = int(summary["errors"] + summary["non_2xx"])
            print(
                f"{minute:>6} {rate:>8,.0f} {summary['p99_us'] / 1000:>7.1f} {memory[-1]:>7.1f}"
                f" {size:>7,.0f} {subscriber.events:>10,}"
                + (f"  ({errors} errors)" if errors else ""),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()
        size = sum(f.stat().st_size for f in tmp.glob("soak.db*")) / 1e6
        shutil.rmtree(tmp, ignore_errors=True)
    tenth = memory[min(9, len(memory) - 1)]
    print(
        f"resident memory: {memory[0]:.1f} MB after minute 1, {tenth:.1f} MB after minute"
        f" {min(10, len(memory))}, {memory[-1]:.1f} MB after minute {len(memory)}"
        f" (most {max(memory):.1f} MB); server pinned to CPU {server_cpu}, wrk to CPU"
        f" {load_cpu}; the database grew to {size:,.0f} MB (removed)"
    )


if __name__ == "__main__":
    main()

"""Scale-out benchmark (SPEC §9): SQLite, and 1 and 2 processes on PostgreSQL + Redis.

    python -m bench.scale [--seconds 5] [--connections 16] \\
        [--database-url postgresql://postgres@127.0.0.1:5432/test] \\
        [--redis-url redis://127.0.0.1:6379/0]

For each setup, ``wrk`` (the load of ``bench.ingest``: a DVCLive metrics post and a
plot-rows post per step, one run per connection, keep-alive) posts as hard as it can while
a probe posts one metric every 20 ms as another user and a subscriber of that user's
event stream times each post to its event. With two processes (two ``livestudio serve``
on their own ports, as behind a load balancer), wrk's connections are split over both and
the probe posts to one while its subscriber listens on the other, so the latency is across
processes, through Redis. Printed per setup: posts/s, probe post-to-subscriber latency
p50/p99, server CPU time per post (all livestudio processes), and PostgreSQL's and
Redis's CPU per post. Each PostgreSQL setup gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from httpx_sse import connect_sse

from bench.ingest import SHA, Scenario, cpu_seconds, drop_schema, new_schema, run_wrk, start
from cli import admin

PROBE_REPO = "git@github.com:acme/probe.git"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds of processes and all their descendants."""
    total = 0.0
    for pid in {p for root in pids for p in _descendants(root)}:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def named_cpu(prefix: str) -> float:
    """CPU seconds of every process whose name starts with ``prefix`` (postgres, redis)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().startswith(prefix):
                total += cpu_seconds(int(entry.name))
        except OSError:
            continue
    return total


@dataclass
class Probe:
    """Posts a metric every 20 ms to one server; times its event on another's stream."""

    post_url: str
    listen_url: str
    token: str
    session: str
    sent: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def listen(self, ready: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {self.session}"}
        with (
            httpx.Client(base_url=self.listen_url, timeout=httpx.Timeout(10, read=None)) as c,
            connect_sse(c, "GET", "/api/events", headers=headers) as source,
        ):
            ready.set()
            for event in source.iter_sse():
                now = time.perf_counter()
                if self.stop.is_set():
                    return
                if event.event != "experiment":
                    continue
                key = f"{json.loads(event.data)['name']}:{json.loads(event.data)['step']}"
                sent = self.sent.pop(key, None)
                if sent is not None:
                    self.latencies.append(now - sent)

    def post(self) -> None:
        body = {
            "type": "data",
            "repo_url": PROBE_REPO,
            "baseline_sha": SHA,
            "name": "probe",
            "client": "dvclive",
            "metrics": {"dvclive/metrics.json": {"data": {"loss": 1.0}}},
        }
        headers = {"Authorization": f"token {self.token}"}
        with httpx.Client(base_url=self.post_url, timeout=10) as client:
            client.post("/api/live", json={**body, "type": "start"}, headers=headers)
            step = 0
            while not self.stop.is_set():
                self.sent[f"probe:{step}"] = time.perf_counter()
                client.post("/api/live", json={**body, "step": step}, headers=headers)
                step += 1
                time.sleep(0.02)


def run_setup(
    label: str, database: str | Path, redis: str, processes: int, args: argparse.Namespace
) -> None:
    admin.add_user(database, "bench", "bench-password", admin=True)
    admin.add_user(database, "probe", "probe-password", admin=False)
    token = admin.create_token(database, "bench").token
    probe_token = admin.create_token(database, "probe").token
    flags = ["--database-url", database] if isinstance(database, str) else ["--db", str(database)]
    env_redis = ["--redis-url", redis] if processes > 1 else []
    ports = [18451 + i for i in range(processes)]
    servers = [
        start(
            [sys.executable, "-m", "cli.main", "serve", *flags, *env_redis, "--port", str(p)],
            p,
            None,
        )
        for p in ports
    ]
    try:
        session = httpx.post(
            f"http://127.0.0.1:{ports[-1]}/api/auth/login",
            json={"username": "probe", "password": "probe-password"},
        ).json()["session_token"]
        probe = Probe(
            f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[-1]}", probe_token, session
        )
        ready = threading.Event()
        listener = threading.Thread(target=probe.listen, args=(ready,), daemon=True)
        listener.start()
        ready.wait(10)
        poster = threading.Thread(target=probe.post, daemon=True)
        per = max(1, args.connections // processes)
        scenario = Scenario("one run per conn", per, 1, True)
        cpu0 = tree_cpu([s.pid for s in servers])
        pg0, redis0 = named_cpu("postgres"), named_cpu("redis-server")
        poster.start()
        results: list[dict[str, float]] = []

        def load(port: int, prefix: str) -> None:
            results.append(run_wrk(port, scenario, token, prefix, args.seconds, None)[0])

        loads = [
            threading.Thread(target=load, args=(p, f"{label[:3]}{i}")) for i, p in enumerate(ports)
        ]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the wrk processes
        for thread in loads:
            thread.start()
        for thread in loads:
            thread.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
        probe.stop.set()
        poster.join(5)
        cpu = tree_cpu([s.pid for s in servers]) - cpu0
        pg, rd = named_cpu("postgres") - pg0, named_cpu("redis-server") - redis0
        requests = sum(int(r["requests"]) for r in results)
        seconds = max(r["duration_us"] for r in results) / 1e6
        errors = sum(int(r["errors"] + r["non_2xx"]) for r in results)
        lat = sorted(probe.latencies)
        p50 = statistics.median(lat) * 1e3 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3 if lat else float("nan")
        print(
            f"{label:<28}{processes:>5} {requests / seconds:>9,.0f} {p50:>8.1f} {p99:>8.1f}"
            f" {cpu / requests * 1e6:>9.0f} {pg / requests * 1e6:>8.0f} {rd / requests * 1e6:>8.0f}"
            f" {wrk_cpu / seconds:>8.0%}" + (f"  ({errors} errors)" if errors else ""),
            flush=True,
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait()


def main() -> None:
    """Run the three setups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections in all")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "LIVESTUDIO_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.scale needs wrk, a C load generator: `sudo apt-get install wrk`.")
    print(
        f"{'setup':<28}{'procs':>5} {'posts/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'µs/post':>9} {'pg µs':>8} {'redis µs':>8} {'wrk cpu':>8}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="livestudio-scale-"))
    run_setup("SQLite", tmp / "bench.db", "", 1, args)
    for processes in (1, 2):
        url, schema = new_schema(args.database_url)
        try:
            label = "PostgreSQL" + (" + Redis" if processes > 1 else "")
            run_setup(label, url, args.redis_url, processes, args)
        finally:
            drop_schema(args.database_url, schema)
    print(
        f"wrk: {args.connections} connections in all, keep-alive, one run each, split over the"
        " processes; latency: a probe's metric post to its event on the other process's"
        " stream (same process with one); µs/post: CPU of all livestudio processes per post;"
        " pg/redis µs: CPU of every postgres / redis-server process per post; wrk cpu: the"
        " share of one core the load generator used (far below 100 %: it was not the limit)."
    )


if __name__ == "__main__":
    main()

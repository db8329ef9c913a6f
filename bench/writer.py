"""The storage cost of a post, without HTTP: livestudio's own ingest jobs on a real SQLite file.

    python -m bench.writer [--batch 8] [--runs 8] [--steps 1000] [--profile]

Replays bench.ingest's posts (per step and run, a metrics post and a plot-rows post) through
``ingest.parse`` and the writer's ``run_in_transaction``, ``--batch`` jobs per transaction
as the group commit would make them, and prints the CPU microseconds per post: parsing, the
jobs, ``BEGIN`` and ``COMMIT``. No event loop, no sockets: what is left is what storing a
post costs (``--profile`` adds cProfile's top functions). Run it pinned (``taskset -c 0``)
on a quiet machine, twice: this VM's speed drifts by a quarter between runs.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import msgspec

from backend.db.connection import connect_sync
from backend.db.migrations import migrate
from backend.db.writer import WriteContext, WriterCache, begin, commit
from backend.services import ingest
from cli import admin

SHA = "f6b4c06e5e54e1856eff03bf0e464ea0bc86da8f"


def bodies(name: str, step: int) -> tuple[bytes, bytes]:
    """The two posts DVCLive makes per step, shaped as bench.ingest's Lua script makes them."""
    loss, acc = 1.0 / (step + 1), step / (step + 10)
    common = {
        "type": "data",
        "repo_url": "git@github.com:acme/bench.git",
        "baseline_sha": SHA,
        "name": name,
        "client": "dvclive",
        "step": step,
    }
    metrics = {
        **common,
        "params": {"dvclive/params.yaml": {"lr": 0.01, "epochs": 100, "model": {"layers": 2}}},
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
    plots = {
        **common,
        "plots": {
            "dvclive/plots/metrics/train/loss.tsv": {"data": [{"step": step, "loss": loss}]},
            "dvclive/plots/metrics/train/acc.tsv": {"data": [{"step": step, "acc": acc}]},
            "dvclive/plots/metrics/val/loss.tsv": {"data": [{"step": step, "loss": loss * 1.1}]},
        },
    }
    return msgspec.json.encode(metrics), msgspec.json.encode(plots)


def main() -> None:
    """Replay the posts and print where each post's microseconds go."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="jobs per transaction")
    parser.add_argument("--runs", type=int, default=8, help="runs posting (batches mix them)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    db = Path(tempfile.mkdtemp(prefix="livestudio-bench-")) / "writer.db"
    admin.add_user(db, "bench", "bench-password", admin=True)
    token = admin.create_token(db, "bench").token
    conn = connect_sync(db)
    migrate(conn)
    conn.execute("PRAGMA wal_autocheckpoint=0")  # as the writer does: checkpoints aside
    posts = [
        body
        for step in range(args.steps)
        for pair in zip(*(bodies(f"run-{r}", step) for r in range(args.runs)), strict=True)
        for body in pair
    ]
    batches = [posts[i : i + args.batch] for i in range(0, len(posts), args.batch)]
    warm, timed = batches[: len(batches) // 10], batches[len(batches) // 10 :]
    cache = WriterCache()
    spent = {"parse": 0.0, "begin": 0.0, "jobs": 0.0, "commit": 0.0}

    def replay(part: list[list[bytes]]) -> int:
        count = 0
        clock = time.process_time
        for batch in part:
            t0 = clock()
            jobs = [ingest.ingest_job(token, ingest.parse(b), time.time) for b in batch]
            t1 = clock()
            begin(conn, cache)
            t2 = clock()
            ctx = WriteContext(conn, cache)
            for job in jobs:
                job(ctx)
            ctx.flush()
            t3 = clock()
            commit(conn, cache)
            t4 = clock()
            for key, value in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[key] += value
            count += len(batch)
        return count

    replay(warm)
    spent = dict.fromkeys(spent, 0.0)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    count = replay(timed)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    total = sum(spent.values())
    parts = ", ".join(f"{k} {v / count * 1e6:.1f}" for k, v in spent.items())
    print(
        f"{count:,} posts of {args.runs} runs in transactions of {args.batch}:"
        f" {total / count * 1e6:.1f} µs CPU per post ({parts})"
    )
    conn.close()


if __name__ == "__main__":
    main()

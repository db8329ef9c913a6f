"""TUI benchmark (SPEC §10): 1,000 updates applied to a 2,000-row table, and frame times.

    python -m bench.tui [--rows 2000] [--metrics 100] [--updates 1000]

Runs the real project screen headless (no server: rows are fed as the stream would
deliver them), applies the updates as fast as they come, and prints how long applying
them took and the time each refresh of the table took to render.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from datetime import UTC, datetime, timedelta

from shared.api import ExperimentRow, ProjectRow
from tui.app import LiveStudioApp
from tui.client import Api
from tui.messages import ExperimentChanged, SnapshotLoaded
from tui.screens.project import ProjectScreen
from tui.settings import TuiSettings
from tui.widgets.experiment_table import ExperimentTable


def rows(count: int, metrics: int) -> list[ExperimentRow]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        ExperimentRow(
            id=i,
            baseline_sha=f"{i % 20:040x}",
            name=f"exp-{i:05d}",
            status="running" if i % 10 == 0 else "completed",
            client="dvclive",
            step=0,
            started_at=start + timedelta(seconds=i),
            updated_at=start,
            metrics={f"metric_{m:03d}": 1.0 / (m + 1) for m in range(metrics)},
            params={"lr": 0.01, "batch": 32},
        )
        for i in range(count)
    ]


class OfflineProject(ProjectScreen):
    """The project screen without a stream: the benchmark feeds it."""

    def on_mount(self) -> None:
        self.query_one(ExperimentTable).focus()


async def measure(count: int, metrics: int, updates: int) -> None:
    app = LiveStudioApp(TuiSettings(), Api("http://127.0.0.1:9"), "bench")
    frame_times: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        screen = OfflineProject(ProjectRow(id=1, name="bench", repo_url="git@x:y/z.git"))
        await app.push_screen(screen)
        table = screen.query_one(ExperimentTable)
        original = table.render_lines

        def timed(crop):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            lines = original(crop)
            frame_times.append(time.perf_counter() - started)
            return lines

        table.render_lines = timed  # type: ignore[method-assign]
        base = rows(count, metrics)
        started = time.perf_counter()
        screen.post_message(SnapshotLoaded(base))
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        built = time.perf_counter() - started
        print(f"initial build of {count} rows x {metrics + 8} columns: {built:.3f} s")
        now = datetime.now(UTC)

        def update(n: int) -> None:
            row = base[(n * 7) % count]
            metrics_now = dict(row.metrics)
            metrics_now["metric_000"] = n / updates
            fields = {
                f: getattr(row, f)
                for f in row.__struct_fields__
                if f not in ("step", "updated_at", "metrics")
            }
            screen.post_message(
                ExperimentChanged(
                    ExperimentRow(
                        **fields,
                        step=n,
                        updated_at=now + timedelta(milliseconds=n),
                        metrics=metrics_now,
                    )
                )
            )

        started = time.perf_counter()
        for n in range(updates):
            update(n)
        await pilot.pause()
        applied = time.perf_counter() - started
        print(f"burst: {updates} updates applied in {applied:.3f} s ({updates / applied:,.0f}/s)")

        # Paced: `updates` per second for two seconds, rows in view among them.
        frame_times.clear()
        started = time.perf_counter()
        for tick in range(200):
            for n in range(updates // 100):
                update(updates + tick * (updates // 100) + n)
            await asyncio.sleep(max(0.0, started + (tick + 1) / 100 - time.perf_counter()))
        await pilot.pause()
        paced = time.perf_counter() - started

        # A new experiment appears: rows are laid out again around the cursor.
        newcomer = rows(count + 1, metrics)[-1]
        started = time.perf_counter()
        screen.post_message(ExperimentChanged(newcomer))
        await pilot.pause()
        appeared = time.perf_counter() - started
    print(
        f"paced: {2 * updates} updates over {paced:.2f} s ({2 * updates / paced:,.0f}/s sustained)"
    )
    print(f"a new experiment joining {count} rows: {appeared * 1000:.1f} ms")
    if frame_times:
        ms = sorted(t * 1000 for t in frame_times)
        p99 = ms[min(len(ms) - 1, math.ceil(len(ms) * 0.99) - 1)]
        print(
            f"table frames meanwhile: {len(ms)}, median {statistics.median(ms):.2f} ms,"
            f" p99 {p99:.2f} ms, max {ms[-1]:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(measure(args.rows, args.metrics, args.updates))


if __name__ == "__main__":
    main()

"""TUI benchmark (SPEC §10): what a person sees, frame by frame, and post to cell.

    python -m bench.tui [--rows 2000] [--metrics 100] [--updates 1000] [--posts 100]

1. The real project screen, headless, fed rows as the stream delivers them: 2,000 rows x
   100 metric columns, 1,000 updates a second for two seconds. For every update it measures
   the time from its arrival to the end of the first whole frame that shows it — Textual's
   compositor, and the terminal bytes of the frame rendered and written (to /dev/null, as
   a headless app writes nothing) — and prints p50/p99, with the frames' own durations.
2. Post to cell, end to end: a real server, a real DVCLive-shaped post over HTTP, the real
   event stream, and the time until a frame showing the new value is written.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cli import admin
from shared.api import ExperimentRow, ProjectRow
from tui.app import LiveStudioApp
from tui.client import Api
from tui.messages import ExperimentChanged, SnapshotLoaded
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
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


class FrameClock:
    """Times whole frames of a screen and when each experiment's cells were redrawn."""

    def __init__(self, app: LiveStudioApp, screen: Any, table: ExperimentTable) -> None:
        self.frames: list[tuple[float, float]] = []
        self.applied: dict[int, list[float]] = defaultdict(list)
        self._sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark
        refresh, display, update = screen._compositor_refresh, app._display, table.update_cells

        def timed_refresh() -> None:
            started = time.perf_counter()
            refresh()
            self.frames.append((started, time.perf_counter()))

        def rendered_display(target: Any, renderable: Any) -> None:
            display(target, renderable)
            if renderable is not None:  # what the driver would write to a terminal
                self._sink.write(renderable.render_segments(app.console))

        def noted_update(experiment_id: int, columns: list[str], now: float) -> None:
            update(experiment_id, columns, now)
            self.applied[experiment_id].append(time.perf_counter())

        screen._compositor_refresh = timed_refresh
        app._display = rendered_display  # type: ignore[method-assign]
        table.update_cells = noted_update  # type: ignore[method-assign]

    def shown_at(self, experiment_id: int, since: float) -> float | None:
        """End of the first frame begun after the experiment's cells changed after ``since``."""
        applied = next((a for a in self.applied[experiment_id] if a >= since), None)
        if applied is None:
            return None
        return next((end for start, end in self.frames if start >= applied), None)


def percentiles(values: list[float]) -> str:
    """p50 / p99 / max in ms."""
    if not values:
        return "no samples"
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, math.ceil(len(ms) * 0.99) - 1)]
    return f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"


async def measure(count: int, metrics: int, updates: int) -> None:
    """Part 1: frames of the table under 1,000 updates a second."""
    app = LiveStudioApp(TuiSettings(), Api("http://127.0.0.1:9"), "bench")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = OfflineProject(ProjectRow(id=1, name="bench", repo_url="git@x:y/z.git"))
        await app.push_screen(screen)
        table = screen.query_one(ExperimentTable)
        clock = FrameClock(app, screen, table)
        base = rows(count, metrics)
        # What a person waits for: from the snapshot's arrival to the end of the first
        # frame drawn after the rows were laid out (rows draw their cells in that frame).
        laid_out: list[float] = []
        show = table.show

        def noted_show() -> None:
            show()
            laid_out.append(time.perf_counter())

        table.show = noted_show  # type: ignore[method-assign]
        started = time.perf_counter()
        screen.post_message(SnapshotLoaded(base))
        while not laid_out or not any(start >= laid_out[0] for start, _ in clock.frames):
            await pilot.pause(0.005)
        built = next(end for start, end in clock.frames if start >= laid_out[0]) - started
        table.show = show  # type: ignore[method-assign]
        await pilot.wait_for_scheduled_animations()
        print(
            f"initial build of {count} rows x {metrics + 8} columns, to its first frame:"
            f" {built:.3f} s"
        )
        now = datetime.now(UTC)
        posted: list[tuple[int, float]] = []
        in_view = table.visible_experiment_ids()

        def update(n: int) -> None:
            # Rows in view, so that every update must be drawn (rows out of view are
            # drawn only when scrolled to: they cost no frame).
            row = base[in_view[(n * 7) % len(in_view)]]
            metrics_now = dict(row.metrics)
            metrics_now["metric_000"] = n / updates
            fields = {
                f: getattr(row, f)
                for f in row.__struct_fields__
                if f not in ("step", "updated_at", "metrics")
            }
            posted.append((row.id, time.perf_counter()))
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

        clock.frames.clear()
        started = time.perf_counter()
        for tick in range(200):
            for n in range(updates // 100):
                update(tick * (updates // 100) + n)
            await asyncio.sleep(max(0.0, started + (tick + 1) / 100 - time.perf_counter()))
        await pilot.pause(0.2)
        paced = time.perf_counter() - started
        latencies = [
            shown - at
            for experiment_id, at in posted
            if (shown := clock.shown_at(experiment_id, at)) is not None
        ]
        durations = [end - start for start, end in clock.frames]

        # A new experiment appears: rows are laid out again around the cursor.
        newcomer = rows(count + 1, metrics)[-1]
        started = time.perf_counter()
        screen.post_message(ExperimentChanged(newcomer))
        await pilot.pause()
        appeared = time.perf_counter() - started
    print(
        f"paced: {len(posted)} updates over {paced:.2f} s ({len(posted) / paced:,.0f}/s sustained)"
    )
    print(f"update arrival to its frame written ({len(latencies)} shown): {percentiles(latencies)}")
    print(f"whole frames ({len(durations)}): {percentiles(durations)}")
    print(f"a new experiment joining {count} rows: {appeared * 1000:.1f} ms")


def _body(name: str, step: int) -> dict[str, Any]:
    return {
        "type": "data",
        "repo_url": "git@github.com:acme/bench-tui.git",
        "baseline_sha": "f6b4c06e5e54e1856eff03bf0e464ea0bc86da8f",
        "name": name,
        "client": "dvclive",
        "step": step,
        "metrics": {"dvclive/metrics.json": {"data": {"loss": 1 / (step + 1), "step": step}}},
    }


def start_server() -> tuple[subprocess.Popen[bytes], str, str, str]:
    """A real server on a fresh database: (process, url, access token, session token)."""
    tmp = Path(tempfile.mkdtemp(prefix="livestudio-bench-tui-"))
    db, port = tmp / "b.db", 18471
    admin.add_user(db, "bench", "bench-password", admin=True)
    token = admin.create_token(db, "bench").token
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    session = httpx.post(
        f"{url}/api/auth/login", json={"username": "bench", "password": "bench-password"}
    ).json()["session_token"]
    return server, url, token, session


async def end_to_end(url: str, token: str, session: str, posts: int) -> None:
    """Part 2: a post to a real server until the frame showing it is written."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        first = (await client.post("/api/live", json=_body("watched", 0))).json()
        app = LiveStudioApp(TuiSettings(server=url), Api(url, session), "bench")
        latencies: list[float] = []
        async with app.run_test(size=(120, 40)) as pilot:
            while not isinstance(app.screen, ProjectsScreen) or not app.screen.projects:
                await pilot.pause(0.05)
            await pilot.press("enter")
            while not isinstance(app.screen, ProjectScreen) or not app.screen.state.rows:
                await pilot.pause(0.05)
            screen = app.screen
            clock = FrameClock(app, screen, screen.query_one(ExperimentTable))
            for step in range(1, posts + 1):
                sent = time.perf_counter()
                await client.post("/api/live", json=_body("watched", step))
                while (shown := clock.shown_at(first["experiment_id"], sent)) is None:
                    await pilot.pause(0.001)
                    if time.perf_counter() - sent > 5:
                        break
                if shown is not None:
                    latencies.append(shown - sent)
                await pilot.pause(0.02)
    print(f"post to cell through a real server ({len(latencies)} posts): {percentiles(latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(measure(args.rows, args.metrics, args.updates))
    server, url, token, session = start_server()
    try:
        asyncio.run(end_to_end(url, token, session, args.posts))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

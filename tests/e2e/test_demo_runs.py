"""The demo's simulated runs speak the real protocol and end as the demo promises."""

import io
import threading
import time

from PIL import Image

from cli.demo import SimulatedRun, png


def test_demo_runs_complete_fail_and_go_stopped(make_server) -> None:
    server = make_server(LIVESTUDIO_STALE_AFTER="1", LIVESTUDIO_SWEEP_INTERVAL="0.2")
    demo = server.add_user("demo")
    stop = threading.Event()
    runs = [
        SimulatedRun("done", 0.05, 6, delay=0.01, images=True),
        SimulatedRun("fails", 0.3, 20, delay=0.01, fail_at=2),
        SimulatedRun("vanishes", 0.05, 20, delay=0.01, vanish_at=3),
    ]
    for run in runs:
        run.run(server.url, demo.token, stop)
    time.sleep(1.8)
    project = demo.client.get("/api/projects").json()[0]
    rows = {
        r["name"]: r for r in demo.client.get(f"/api/projects/{project['id']}/experiments").json()
    }
    assert rows["done"]["status"] == "completed" and rows["done"]["step"] == 5
    assert rows["fails"]["status"] == "failed"
    assert rows["fails"]["errors"][0]["cls"] == "FloatingPointError"
    assert rows["fails"]["metrics"]["train/loss"] == "nan"
    assert rows["vanishes"]["status"] == "stopped"
    detail = demo.client.get(f"/api/experiments/{rows['done']['id']}").json()
    assert [i["path"] for i in detail["images"]] == ["samples/prediction.png"]
    series = demo.client.get(f"/api/experiments/{rows['done']['id']}/series").json()
    assert [p[0] for p in series["train/loss"]] == list(range(6))


def test_demo_png_is_a_real_png() -> None:
    image = Image.open(io.BytesIO(png(5, 3, lambda x, y: (x * 50, y * 80, 7))))
    assert image.format == "PNG" and image.size == (5, 3)
    assert image.getpixel((4, 2)) == (200, 160, 7)


def test_the_demo_refuses_a_taken_port_in_one_line() -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("LIVESTUDIO_")},
            timeout=60,
        )
    assert done.returncode == 1 and f"Cannot listen on 127.0.0.1:{port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_tui_and_the_demo_refuse_to_draw_into_a_file_or_a_pipe() -> None:
    import subprocess
    import sys

    for args in (["tui", "--server", "http://127.0.0.1:9"], ["demo"]):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1 and "needs a terminal" in done.stderr, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr


def test_demo_runs_keep_posting_after_the_profile_token_is_regenerated(monkeypatch) -> None:
    """The welcome invites regenerating the profile token; the demo's own runs must go on
    (they posted with it, and stopped for good the moment it was revoked)."""
    import httpx

    import tui.app
    from cli.demo import DEMO_PROJECT, run_demo

    seen: dict[str, object] = {}

    class StandIn:  # the TUI, replaced: this acts through the API as the TUI would
        return_code = 0

        def __init__(self, settings, api) -> None:
            self.url, self.session = settings.server, api.token

        def run(self) -> None:
            client = httpx.Client(
                base_url=self.url, headers={"Authorization": f"Bearer {self.session}"}
            )
            project = next(
                p for p in client.get("/api/projects").json() if p["name"] == DEMO_PROJECT
            )
            rows = f"/api/projects/{project['id']}/experiments"

            def step_of(name: str) -> int:
                got = {r["name"]: r for r in client.get(rows).json()}
                step = got[name]["step"] if name in got else None
                return -1 if step is None else step

            deadline = time.monotonic() + 20
            while step_of("wider-net") < 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.post("/api/user/token").status_code in (200, 201)
            before = step_of("wider-net")
            time.sleep(2.5)  # wider-net posts a step every 0.7 s
            seen["steps"] = (before, step_of("wider-net"))

    monkeypatch.setattr(tui.app, "build_app", lambda settings, api: StandIn(settings, api))
    assert run_demo() == 0
    before, after = seen["steps"]  # type: ignore[misc]
    assert after > before >= 0, (before, after)

"""``livestudio demo``: a server in-process, simulated training runs, and the TUI on them."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from PIL import Image

from backend.services.ingest import INGEST_SCOPE
from backend.settings import Settings
from cli import admin
from cli.serve import uvicorn_config

REPO = "git@github.com:livestudio/demo-mnist.git"
DEMO_PROJECT = "demo-mnist"
BASELINES = ("3f2a9c1e4b5d6f708192a3b4c5d6e7f8091a2b3c", "9be14d7f03c2a1b4e5f60718293a4b5c6d7e8f90")
PASSWORD = "demo-password"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """A small RGB PNG; ``pixel(x, y)`` gives (r, g, b)."""
    image = Image.new("RGB", (width, height))
    image.putdata([pixel(x, y) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _pixel(shade: int, x: int, y: int) -> tuple[int, int, int]:
    return (shade, (x * 10) % 256, (y * 15) % 256)


@dataclass
class SimulatedRun:
    """One training job speaking the real protocol: two posts per step, as DVCLive does."""

    name: str
    lr: float
    steps: int
    baseline: str = BASELINES[0]
    delay: float = 1.0
    fail_at: int | None = None
    vanish_at: int | None = None
    images: bool = False
    message: str = ""
    noise: float = field(default_factory=lambda: random.uniform(0.0, 0.04))

    def run(self, url: str, token: str, stop: threading.Event) -> None:
        """Post until done, failed, vanished or stopped."""
        base = {
            "repo_url": REPO,
            "baseline_sha": self.baseline,
            "name": self.name,
            "client": "dvclive",
        }
        params = {
            "dvclive/params.yaml": {
                "lr": self.lr,
                "batch": 64,
                "epochs": self.steps,
                "model": {"layers": 3, "act": "relu"},
            }
        }
        with httpx.Client(
            base_url=url, headers={"Authorization": f"token {token}"}, timeout=10
        ) as client:

            def send(body: dict[str, object]) -> None:
                # Like DVCLive: a failed post is only logged and the run goes on.
                with contextlib.suppress(httpx.HTTPError):
                    client.post("/api/live", json={**base, **body})

            send({"type": "start", "message": self.message})
            for step in range(self.steps):
                if stop.wait(self.delay):
                    return
                if step == self.vanish_at:
                    return  # killed: no done, only silence
                loss = self._loss(step)
                acc = max(0.0, min(1.0, 1.0 - loss / 2.5 + random.uniform(-0.01, 0.01)))
                val_loss = loss * 1.08 + random.uniform(0, 0.02)
                if self.fail_at is not None and step >= self.fail_at:
                    loss = val_loss = math.nan
                values = {"train": {"loss": loss, "acc": acc}, "val": {"loss": val_loss}}
                send(
                    {
                        "type": "data",
                        "step": step,
                        "params": params,
                        "metrics": {
                            "dvclive/metrics.json": {"data": {**_wire(values), "step": step}}
                        },
                    }
                )
                plots: dict[str, object] = {
                    "dvclive/plots/metrics/train/loss.tsv": {
                        "data": [{"step": step, "loss": _num(loss)}]
                    },
                    "dvclive/plots/metrics/train/acc.tsv": {
                        "data": [{"step": step, "acc": _num(acc)}]
                    },
                    "dvclive/plots/metrics/val/loss.tsv": {
                        "data": [{"step": step, "loss": _num(val_loss)}]
                    },
                }
                if self.images and step % 5 == 0:
                    import base64

                    shade = int(255 * min(1.0, step / max(1, self.steps)))
                    image = png(24, 16, functools.partial(_pixel, shade))
                    plots["dvclive/plots/images/samples/prediction.png"] = {
                        "image": base64.b64encode(image).decode()
                    }
                send({"type": "data", "step": step, "plots": plots})
                if self.fail_at is not None and step >= self.fail_at + 2:
                    send(
                        {
                            "type": "done",
                            "errors": [
                                {
                                    "cls": "FloatingPointError",
                                    "text": "loss became NaN; lr too high?",
                                }
                            ],
                        }
                    )
                    return
            send({"type": "done", "experiment_rev": f"{random.getrandbits(160):040x}"})

    def _loss(self, step: int) -> float:
        return 2.3 * math.exp(-self.lr * 8 * step) + 0.05 + random.uniform(0, self.noise)


def _num(value: float) -> float | str:
    return "nan" if math.isnan(value) else value


def _wire(tree: dict[str, dict[str, float]]) -> dict[str, dict[str, float | str]]:
    return {k: {n: _num(v) for n, v in d.items()} for k, d in tree.items()}


def demo_runs() -> list[tuple[float, SimulatedRun]]:
    """(start delay in seconds, run): one completes, one fails, one goes silent, more follow."""
    return [
        (0, SimulatedRun("baseline-cnn", 0.02, 60, message="baseline cnn", images=True)),
        (0, SimulatedRun("lr-too-high", 0.3, 40, fail_at=14, message="baseline cnn")),
        (1, SimulatedRun("preempted-a100", 0.05, 200, vanish_at=12, message="baseline cnn")),
        (
            2,
            SimulatedRun(
                "wider-net", 0.03, 90, baseline=BASELINES[1], message="wider layers", delay=0.7
            ),
        ),
        (
            20,
            SimulatedRun(
                "wider-net-dropout",
                0.025,
                120,
                baseline=BASELINES[1],
                message="wider layers",
                images=True,
            ),
        ),
        (
            45,
            SimulatedRun(
                "long-schedule", 0.01, 300, baseline=BASELINES[1], message="wider layers", delay=0.5
            ),
        ),
    ]


def run_demo(port: int = 0) -> int:
    """Start everything, open the TUI, and clean up when it closes (``port`` 0: any free
    one; another, to forward it or keep to a range). The TUI's exit status."""
    from tui.app import build_app
    from tui.client import Api
    from tui.settings import TOKEN_LINE, Session, TuiSettings

    with tempfile.TemporaryDirectory(prefix="livestudio-demo-") as folder:
        tmp = Path(folder)
        # The TUI owns the terminal: server and client logs go to a file.
        logging.basicConfig(filename=tmp / "server.log", level=logging.WARNING, force=True)
        db = tmp / "demo.db"
        admin.add_user(db, "demo", PASSWORD, admin=True)
        token = admin.create_token(db, "demo").token
        # The simulated runs post with a token of their own: regenerating the profile token
        # (the welcome invites it) must not stop them.
        runs_token = admin.create_client_token(db, "demo", "demo runs", frozenset({INGEST_SCOPE}))
        # Made now, so the TUI opens straight into its live table.
        admin.add_project(db, DEMO_PROJECT, REPO, None, "demo")
        settings = Settings(db=db, port=port or free_port(), stale_after=20, sweep_interval=1)
        url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn_config(settings, log_level="warning")
        config.log_config = None
        server = uvicorn.Server(config)
        serving = threading.Thread(target=server.run, name="livestudio-demo-server", daemon=True)
        serving.start()
        _wait_until_up(url)
        session = httpx.post(
            f"{url}/api/auth/login", json={"username": "demo", "password": PASSWORD}
        ).json()
        stop = threading.Event()
        runners = [
            threading.Thread(
                target=_delayed, args=(delay, run, url, runs_token.token, stop), daemon=True
            )
            for delay, run in demo_runs()
        ]
        for runner in runners:
            runner.start()
        tui_settings = TuiSettings(
            server=url, session_file=tmp / "session.json", open_project=DEMO_PROJECT
        )
        tui_settings.welcome = (
            f"Demo server {url} (user demo, password {PASSWORD}); it stops when you quit."
            " p plots, space selects, c compares, ? every key, esc all projects."
            " Send your own runs to it:"
        )
        tui_settings.welcome_lines = f"export DVC_STUDIO_URL={url}\n{TOKEN_LINE}{token}"
        tui_settings.save_session(Session(url, "demo", session["session_token"]))
        try:
            app = build_app(tui_settings, Api(url, session["session_token"]))
            app.run()
            return app.return_code or 0
        finally:
            stop.set()
            server.should_exit = True
            serving.join(5)


def _delayed(delay: float, run: SimulatedRun, url: str, token: str, stop: threading.Event) -> None:
    if not stop.wait(delay):
        run.run(url, token, stop)


def _wait_until_up(url: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the demo server did not start")

"""Watches evaluated by the server on real DVCLive runs: stream alerts and webhooks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.backend.sse import Listener
from tests.conftest import Server, User, free_port
from tests.e2e.test_dvc_tooling import dvc_env
from tests.e2e.test_real_clients import git

SCRIPT = """
import math, sys, time
from dvclive import Live

mode = sys.argv[1]
with Live(save_dvc_exp=False) as live:
    for step in range(8):
        live.log_metric("loss", 1 / (step + 1))
        live.log_metric("grad", math.nan if mode == "fail" and step == 5 else 0.5)
        live.next_step()
        time.sleep(0.1)
    if mode == "stall":
        time.sleep(float(sys.argv[2]))
if mode == "fail":
    raise ValueError("diverged")
"""


class Receiver:
    """A webhook receiver: answers 500 to the first post, 200 after; keeps every body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(500 if len(received) == 1 else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.http.shutdown()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "watched"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "git@github.com:acme/watched.git")
    (repo / "train.py").write_text(SCRIPT)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


def run(server: Server, user: User, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`livestudio run -- python train.py ARGS` with DVCLive pointed at the server."""
    env = {**dvc_env(repo.parent), "DVC_STUDIO_URL": server.url, "DVC_STUDIO_TOKEN": user.token}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--", sys.executable, "train.py", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def watch(user: User, **body: object) -> dict[str, object]:
    resp = user.client.post("/api/watches", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def wait_for(condition, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_watches_fire_once_to_the_stream_and_the_webhook(
    make_server, repo: Path, receiver: Receiver
) -> None:
    server = make_server(LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE="1", LIVESTUDIO_WEBHOOK_RETRY_DELAY="0.1")
    alice = server.add_user("alice")
    project = alice.client.post(
        "/api/projects", json={"name": "watched", "repo_url": "https://github.com/acme/watched"}
    ).json()
    failed = watch(
        alice,
        kind="status",
        project_id=project["id"],
        statuses=["failed"],
        webhook_url=receiver.url,
    )
    nan = watch(alice, kind="nonfinite", project_id=project["id"], metric="grad")
    low = watch(
        alice, kind="threshold", project_id=project["id"], metric="loss", op="<", threshold=0.3
    )
    session = alice.client.headers["Authorization"]
    events = Listener(server.url, "/api/events", {"Authorization": session})
    try:
        done = run(server, alice, repo, "fail")
        assert done.returncode == 1, done.stderr
        alerts = wait_for(
            lambda: (a := alice.client.get("/api/alerts").json()) and len(a) >= 3 and a
        )
        by_watch = {a["watch_id"]: a for a in alerts}
        assert len(alerts) == 3, alerts  # the loss stays below 0.3 for 5 steps: one alert
        assert by_watch[failed["id"]]["title"].endswith(": failed at step 7")
        assert by_watch[nan["id"]]["title"].endswith("grad is nan at step 5")
        assert by_watch[low["id"]]["title"].endswith("loss = 0.25 at step 3")
        assert "watch" in by_watch[failed["id"]]["detail"]
        streamed: list = []
        while sum(e.event == "alert" for e in streamed) < 3:
            streamed.append(events.events.get(timeout=10))
        fired = sorted(e.data["watch_id"] for e in streamed if e.event == "alert")
        assert fired == sorted([failed["id"], nan["id"], low["id"]])
        # The webhook: refused once (500), delivered on the retry, both attempts logged.
        delivered = wait_for(
            lambda: [
                a
                for a in alice.client.get("/api/alerts").json()
                if a["watch_id"] == failed["id"] and len(a["deliveries"]) == 2
            ]
        )[0]
        assert [d["status"] for d in delivered["deliveries"]] == [500, 200]
        assert delivered["deliveries"][1]["error"] is None
        assert len(receiver.bodies) == 2
        body = receiver.bodies[1]
        assert body["text"] == body["content"]
        assert "failed at step 7" in str(body["text"])
        assert body["alert"]["experiment_id"] == by_watch[failed["id"]]["experiment_id"]
        # The same done re-sent (a retry, a duplicate) fires nothing new.
        row = alice.client.get(f"/api/projects/{project['id']}/experiments").json()[0]
        alice.live(
            {
                "type": "done",
                "repo_url": "https://github.com/acme/watched",
                "baseline_sha": row["baseline_sha"],
                "name": row["name"],
                "client": "dvclive",
                "errors": [{"cls": "ValueError", "text": "diverged"}],
            }
        )
        time.sleep(1.5)
        assert len(alice.client.get("/api/alerts").json()) == 3
        assert len(receiver.bodies) == 2
        later = [events.events.get_nowait() for _ in range(events.events.qsize())]
        assert [e for e in later if e.event == "alert"] == []
    finally:
        events.close()


def test_a_run_that_stops_posting_fires_its_stalled_watch(
    server: Server, alice: User, repo: Path
) -> None:
    project = alice.client.post(
        "/api/projects", json={"name": "watched", "repo_url": "https://github.com/acme/watched"}
    ).json()
    stalled = watch(alice, kind="stalled", project_id=project["id"], factor=2)
    done = run(server, alice, repo, "stall", "5")
    assert done.returncode == 0, done.stderr
    alerts = alice.client.get("/api/alerts").json()
    assert [a["watch_id"] for a in alerts] == [stalled["id"]]
    assert (
        ": stalled at step 7" in alerts[0]["title"] or ": stalled at step 8" in alerts[0]["title"]
    )
    row = alice.client.get(f"/api/projects/{project['id']}/experiments").json()[0]
    assert row["status"] == "completed"
    # ~8 steps a second while it ran; the rate honestly covers any pause in the client's
    # posts, and a loaded CI machine once held one for 7 s (0.87 steps/s), so only its
    # presence is checked here: tests/backend/test_step_rate.py checks the arithmetic.
    assert 0 < row["steps_per_s"] < 20
    # The details show the same rate as the listing (they read it from the stored row).
    detail = alice.client.get(f"/api/experiments/{row['id']}").json()
    assert detail["steps_per_s"] == row["steps_per_s"]


def test_a_webhook_that_never_answers_is_logged_in_words(make_server) -> None:  # type: ignore[no-untyped-def]
    """httpx's timeouts have no text: the delivery log said "ReadTimeout: "."""
    import socket

    from tests.conftest import fixture_bodies

    silent = socket.create_server(("127.0.0.1", 0))  # takes connections, never answers
    silent.listen()
    try:
        server = make_server(LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE="1")
        alice = server.add_user("alice")
        body = fixture_bodies("dvclive_basic")[1]
        assert alice.live(body).status_code == 200
        project = alice.client.get("/api/projects").json()[0]
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        watch(alice, kind="status", project_id=project["id"], webhook_url=url)
        failed = {**body, "type": "done", "errors": [{"cls": "E", "text": "x"}]}
        assert alice.live(failed).status_code == 200
        logged = wait_for(
            lambda: [d for a in alice.client.get("/api/alerts").json() for d in a["deliveries"]]
        )
        assert logged[0]["error"] == "no answer within 5 s"
    finally:
        silent.close()

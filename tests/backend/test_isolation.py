"""No request waits behind another's work: a lock held elsewhere, a huge post, a full disk."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, Server, fixture_bodies, free_port

# SQLite's file lock and a full disk under the SQLite file
pytestmark = pytest.mark.sqlite_only

BODY = fixture_bodies("dvclive_basic")[1]

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


def live(server: Server, token: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/live", json=body, headers={"Authorization": f"token {token}"}, timeout=60
    )


def test_another_process_holding_the_write_lock_freezes_nothing(make_server) -> None:
    server = make_server(LIVESTUDIO_WRITE_TIMEOUT="1.5")
    alice = server.add_user("alice")
    assert live(server, alice.token, BODY).status_code == 200
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(server.db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        answers: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: answers.append(live(server, alice.token, {**BODY, "step": 1}))
        )
        waiting.start()
        # While that post waits for the lock, everything else answers.
        served = 0
        while waiting.is_alive():
            assert httpx.get(f"{server.url}/health", timeout=2).status_code == 200
            assert alice.client.get("/api/projects", timeout=2).status_code == 200
            served += 1
        waiting.join()
        assert served >= 5
        (refused,) = answers
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert "locked by another program" in refused.json()["detail"]
        # A post sent while locked succeeds once the lock is let go within its time.
        late: list[httpx.Response] = []
        poster = threading.Thread(
            target=lambda: late.append(live(server, alice.token, {**BODY, "step": 2}))
        )
        poster.start()
        holder.communicate("\n", timeout=10)
        poster.join()
        assert late[0].status_code == 200
    finally:
        holder.kill()
    experiment = alice.client.get(f"/api/experiments/{late[0].json()['experiment_id']}")
    assert experiment.json()["step"] == 2
    log = server.log.read_text() if server.log else ""
    assert log.count("holds the database write lock") == 1
    assert "Traceback" not in log


def test_a_huge_plot_post_lets_other_requests_through(server: Server) -> None:
    alice = server.add_user("alice")
    rows = [{"step": s, "loss": s * 0.5} for s in range(300_000)]
    big = {**BODY, "plots": {"dvclive/plots/metrics/train/loss.tsv": {"data": rows}}}
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(live(server, alice.token, big)))
    sender.start()
    served = 0
    while sender.is_alive():
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        served += 1
    sender.join()
    assert answers[0].status_code == 200, answers[0].text
    assert served >= 5, "requests waited behind the big post"
    series = alice.client.get(
        f"/api/experiments/{answers[0].json()['experiment_id']}/series", timeout=60
    ).json()["train/loss"]
    assert len(series) == 300_000 and series[-1] == [299_999, 149_999.5]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs of our own (root can mount one; elsewhere the test says why it skips)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write until the disk is full.

    Unbuffered: a buffered file would try to flush its last partial chunk again on close,
    and raise ENOSPC from the ``with`` line, depending on how many bytes happened to fit.
    """
    with path.open("wb", buffering=0) as f:
        chunk = b"\1" * 65536
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass


def test_a_full_disk_is_a_507_logins_and_reads_keep_working_and_it_recovers(
    small_disk: Path,
) -> None:
    server = Server(
        db=small_disk / "live.db",
        port=free_port(),
        env={"LIVESTUDIO_DISK_RESERVE": "2000000"},
    )
    server.start()
    try:
        alice = server.add_user("alice")
        first = live(server, alice.token, BODY)
        assert first.status_code == 200
        filler = small_disk / "filler"
        fill(filler)
        # A post may still fit in space SQLite already holds (a 200 is then committed);
        # once the disk refuses, every post is a 507 saying so, never a 500.
        answers = [
            live(server, alice.token, {**BODY, "name": f"r{i}", "step": i}) for i in range(12)
        ]
        codes = [r.status_code for r in answers]
        assert 507 in codes, [r.text for r in answers]
        refused = answers[codes.index(507) :]
        assert all(r.status_code == 507 for r in refused), [r.text for r in answers]
        assert set(codes) <= {200, 507}
        assert "disk is full" in refused[-1].json()["detail"]
        # Reading and logging in still work.
        assert alice.client.get("/api/projects").status_code == 200
        relogin = httpx.post(
            f"{server.url}/api/auth/login", json={"username": "alice", "password": PASSWORD}
        )
        assert relogin.status_code == 200, relogin.text
        # Freeing a little space (less than the reserve) is enough to go on.
        with filler.open("r+b") as f:
            f.truncate(filler.stat().st_size - 1_500_000)
        resumed = None
        for attempt in range(40):
            resumed = live(server, alice.token, {**BODY, "name": "after", "step": attempt})
            if resumed.status_code == 200:
                break
            threading.Event().wait(0.25)
        assert resumed is not None and resumed.status_code == 200, resumed.text
        filler.unlink()
        assert live(server, alice.token, {**BODY, "name": uuid.uuid4().hex}).status_code == 200
    finally:
        server.stop()
    log = server.log.read_text() if server.log else ""
    assert log.count("is full") == 1, log[-2000:]
    assert "Traceback" not in log

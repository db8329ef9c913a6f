"""Per-step points go to the points log first and are filed in bulk; reads never notice."""

import math
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from backend.db import repository
from backend.db.connection import connect_sync
from backend.db.migrations import migrate
from tests.backend.sse import Event, Listener
from tests.conftest import Server, User, fixture_bodies

BASE = fixture_bodies("dvclive_basic")[2]
LOSS = "dvclive/plots/metrics/loss.tsv"
ACC = "dvclive/plots/metrics/acc.tsv"


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """A server whose timer never files the log during a test (reads and size still do)."""
    return make_server(LIVESTUDIO_SWEEP_INTERVAL="3600")


def post(user: User, step: int, loss: object, acc: float | None = None, name: str = "") -> int:
    plots = {LOSS: {"data": [{"step": step, "loss": loss}]}}
    if acc is not None:
        plots[ACC] = {"data": [{"step": step, "acc": acc}]}
    body = {**BASE, "step": step, "plots": plots, **({"name": name} if name else {})}
    response = user.live(body)
    assert response.status_code == 200, response.text
    return int(response.json()["experiment_id"])


def logged(server: Server) -> int:
    with closing(connect_sync(server.database)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM points_log").fetchone()[0])


def series(user: User, experiment_id: int, name: str = "loss") -> list[list[object]]:
    response = user.client.get(f"/api/experiments/{experiment_id}/series?names={name}")
    assert response.status_code == 200, response.text
    return response.json()[name]


def test_logged_steps_are_read_back_whole_and_filed(server: Server, alice: User) -> None:
    experiment_id = 0
    for step in range(10):
        experiment_id = post(alice, step, 1.0 / (step + 1), acc=step / 10)
    assert logged(server) == 20  # one page per post, not one per series
    assert series(alice, experiment_id) == [[s, 1.0 / (s + 1)] for s in range(10)]
    assert series(alice, experiment_id, "acc")[-1] == [9, 0.9]
    assert logged(server) == 0  # the read filed the log first


def test_a_resent_row_after_logged_ones_wins_and_is_announced_once(
    server: Server, alice: User
) -> None:
    experiment_id = post(alice, 0, 0.5)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    headers = {"Authorization": alice.client.headers["Authorization"]}
    listener = Listener(server.url, f"/api/projects/{project_id}/events", headers)
    for step in range(1, 6):
        post(alice, step, float(step))
    post(alice, 3, 33.0)  # a late row with a new value, while 1..5 wait in the log
    post(alice, 4, 4.0)  # a late row with the same value: stored once, not announced
    post(alice, 6, "nan")
    points: list[Event] = []
    while len(points) < 7:
        points += [e for e in listener.take(1) if e.event == "points"]
    listener.close()
    announced = [tuple(p) for e in points for p in e.data["series"].get("loss", [])]
    assert announced == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (3, 33.0), (6, "nan")]
    got = series(alice, experiment_id)
    assert got == [[0, 0.5], [1, 1.0], [2, 2.0], [3, 33.0], [4, 4.0], [5, 5.0], [6, "nan"]]


def test_deleting_an_experiment_drops_its_logged_points(server: Server, alice: User) -> None:
    doomed = post(alice, 0, 1.0, name="doomed")
    post(alice, 1, 2.0, name="doomed")
    kept = post(alice, 0, 7.0, name="kept")
    assert logged(server) == 3
    assert alice.client.delete(f"/api/experiments/{doomed}").status_code == 204
    assert logged(server) == 1
    assert series(alice, kept) == [[0, 7.0]]


def test_logged_points_survive_a_restart(server: Server, alice: User) -> None:
    experiment_id = post(alice, 0, 1.0)
    post(alice, 1, 2.0)
    server.stop(kill=True)
    server.start()
    assert series(alice, experiment_id) == [[0, 1.0], [1, 2.0]]


def one_experiment(database: Path | str) -> Any:
    """A connection to a new database holding one user's one experiment (id 1)."""
    conn = connect_sync(database)
    migrate(conn)
    conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('u', 'x', 0)")
    conn.execute(
        "INSERT INTO experiments (poster_id, repo_key, repo_url, baseline_sha, name, client,"
        " status, started_at, updated_at) VALUES (1, 'k', 'u', 's', 'n', 'dvclive', 'running',"
        " 0, 0)"
    )
    return conn


def test_filing_keeps_the_latest_row_and_summarises_closed_blocks(database: Path | str) -> None:
    conn = one_experiment(database)
    series_id = repository.series_id(conn, 1, "loss")
    block = 1 << repository.BLOCK_BITS
    repository.log_points(conn, [(series_id, s, float(s)) for s in range(block + 10)], 1.0)
    repository.log_points(conn, [(series_id, 5, -1.0), (series_id, 7, math.nan)], 2.0)
    assert repository.series_max_step(conn, series_id) == block + 9
    assert repository.file_points(conn) == block + 12
    rows = dict(conn.execute("SELECT step, value FROM points WHERE series_id = ?", (series_id,)))
    assert len(rows) == block + 10 and rows[5] == -1.0 and rows[7] is None
    summary = conn.execute(
        "SELECT block, min_step, min_value, max_step, nan_step FROM point_blocks"
    ).fetchall()
    assert [tuple(r) for r in summary] == [(0, 5, -1.0, block - 1, 7)]  # block 1 still open
    assert repository.logged_points(conn) == 0 and repository.file_points(conn) == 0


def test_a_large_log_is_filed_oldest_first_in_parts_with_exact_summaries(
    database: Path | str,
) -> None:
    conn = one_experiment(database)
    loss, acc = repository.series_id(conn, 1, "loss"), repository.series_id(conn, 1, "acc")
    block = 1 << repository.BLOCK_BITS
    # As DVCLive posts: each step of both series, appended past their ends.
    for step in range(3 * block + 5):
        repository.log_points(conn, [(loss, step, 1.0 / (step + 1)), (acc, step, float(step))], 1)
    total, filed = 2 * (3 * block + 5), 0
    while repository.logged_points(conn):
        part = repository.file_points(conn, 100)
        filed += part
        assert 0 < part <= 100
        # What is filed is each series' lowest steps; every sealed block is summarised
        # from all of its points, never from part of them.
        for series_id in (loss, acc):
            (top,) = conn.execute(
                "SELECT MAX(step) FROM points WHERE series_id = ?", (series_id,)
            ).fetchone()
            (lowest_logged,) = conn.execute(
                "SELECT MIN(step) FROM points_log WHERE series_id = ?", (series_id,)
            ).fetchone()
            assert lowest_logged is None or lowest_logged == top + 1
            summarised = [
                b
                for (b,) in conn.execute(
                    "SELECT block FROM point_blocks WHERE series_id = ? ORDER BY block",
                    (series_id,),
                )
            ]
            assert summarised == list(range(top >> repository.BLOCK_BITS))
    assert filed == total
    lows = conn.execute(
        "SELECT block, min_step, max_step FROM point_blocks WHERE series_id = ? ORDER BY block",
        (loss,),
    ).fetchall()
    # loss falls with every step: each block's lowest is its last step, its highest its first.
    assert [tuple(r) for r in lows] == [(b, (b + 1) * block - 1, b * block) for b in range(3)]


def test_the_timer_files_the_log_without_any_read(make_server: Callable[..., Server]) -> None:
    server = make_server(LIVESTUDIO_SWEEP_INTERVAL="0.2")
    alice = server.add_user("alice")
    post(alice, 0, 1.0)
    deadline = time.monotonic() + 10
    while logged(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged(server) == 0
    with closing(connect_sync(server.database)) as conn:
        rows = conn.execute("SELECT step, value FROM points").fetchall()
        assert [tuple(r) for r in rows] == [(0, 1.0)]

"""Server-side downsampling keeps the shape: extremes, NaNs, first and last points."""

import json
import math
import time
from contextlib import closing
from pathlib import Path

import pytest

from backend.db import downsample
from backend.db.connection import connect_async, connect_sync
from backend.db.migrations import migrate
from backend.db.writer import run_in_transaction
from backend.services import ingest
from cli import admin
from tests.conftest import Server, User, fixture_bodies

BASE = fixture_bodies("dvclive_basic")[2]
PATH = "dvclive/plots/metrics/loss.tsv"


def send(user: User, rows: list[tuple[int, object]]) -> int:
    body = {
        **BASE,
        "step": rows[-1][0],
        "plots": {PATH: {"data": [{"step": s, "loss": v} for s, v in rows]}},
    }
    response = user.live(body)
    assert response.status_code == 200, response.text
    return int(response.json()["experiment_id"])


def values(n: int) -> list[tuple[int, object]]:
    return [(s, math.sin(s / 300) + (5.0 if s == 1234 else 0.0)) for s in range(n)]


def test_long_series_keeps_extremes_ends_and_nan(alice: User) -> None:
    rows = values(6000)
    rows[4321] = (4321, "nan")
    experiment_id = 0
    for start in range(0, 6000, 1000):  # as DVCLive would re-send a history, in posts
        experiment_id = send(alice, rows[start : start + 1000])
    for max_points in (10, 60, 500):  # block summaries, and straight from the points
        got = alice.client.get(
            f"/api/experiments/{experiment_id}/series?names=loss&max_points={max_points}"
        ).json()["loss"]
        assert 3 <= len(got) <= max_points
        steps = [p[0] for p in got]
        assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 5999
        assert [1234, rows[1234][1]] in got  # the spike
        assert [4321, "nan"] in got  # divergence is not hidden
        numeric = [p[1] for p in got if p[1] != "nan"]
        assert min(numeric) == min(v for _, v in rows if v != "nan")


def test_a_late_change_in_a_completed_block_is_seen(alice: User, server: Server) -> None:
    experiment_id = send(alice, values(3000))
    with closing(connect_sync(server.database)) as conn:  # the writer summarised the blocks
        blocks = conn.execute("SELECT COUNT(*) FROM point_blocks").fetchone()[0]
    assert blocks == 3000 // 256
    send(alice, [(100, 42.0)])  # a re-sent row with a new value, long after its block closed
    got = alice.client.get(
        f"/api/experiments/{experiment_id}/series?names=loss&max_points=10"
    ).json()["loss"]
    assert [100, 42.0] in got
    full = alice.client.get(f"/api/experiments/{experiment_id}/series?names=loss").json()["loss"]
    assert len(full) == 3000 and full[100] == [100, 42.0]


def test_a_sparse_series_that_fits_comes_whole(alice: User) -> None:
    """Steps logged every 10,000 span far more than they number: 300 points asked for at
    most 500 are all sent (bucketing by span kept 3 of them)."""
    rows = [(s * 10_000, float(s % 17)) for s in range(300)]
    experiment_id = send(alice, rows)
    for max_points, expected in ((500, 300), (300, 300), (50, None)):
        got = alice.client.get(
            f"/api/experiments/{experiment_id}/series?names=loss&max_points={max_points}"
        ).json()["loss"]
        if expected is not None:
            assert [tuple(p) for p in got] == rows
        else:
            assert 3 <= len(got) <= max_points and got[-1][0] == rows[-1][0]


async def test_bucketing_in_parts_gives_what_one_scan_gives(
    database: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long series is bucketed a part of its steps per query (so other reads go in
    between); cutting at bucket edges must not change a single point."""
    admin.add_user(database, "ada", "correct horse battery", admin=True)
    token = admin.create_token(database, "ada").token
    rows = values(3000)
    rows[777] = (777, "nan")
    body = {
        **BASE,
        "step": 2999,
        "plots": {PATH: {"data": [{"step": s, "loss": v} for s, v in rows]}},
    }
    with closing(connect_sync(database)) as conn:
        migrate(conn)
        (experiment_id,), _ = run_in_transaction(
            conn, [ingest.ingest_job(token, ingest.parse(json.dumps(body).encode()), time.time)]
        )
    reader = await connect_async(database)
    try:
        whole = await downsample.downsampled(reader, experiment_id, "loss", 500)
        monkeypatch.setattr(downsample, "SCAN_STEPS", 50)  # ~4 buckets a query: 60 queries
        parts = await downsample.downsampled(reader, experiment_id, "loss", 500)
    finally:
        await reader.close()
    assert whole is not None and len(whole) > 300
    assert parts == whole
    assert (777, None) in parts and (1234, rows[1234][1]) in parts

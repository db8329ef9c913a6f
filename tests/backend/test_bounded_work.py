"""Write work that grows with the data is done in bounded parts, so no request waits long.

Every write runs on the server's event loop; one transaction deleting a million points or
events held every request for seconds (measured in review). These check that each part is
bounded and that the parts together still do all of the work.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from backend.db import repository
from backend.db.watches import WatchRecord, insert_alert
from backend.db.writer import run_in_transaction
from backend.services import experiments, ingest, projects
from backend.services.push import REFS_PER_JOB
from backend.services.sweeper import prune_job
from cli import admin
from shared.watches import WatchCondition
from tests.conftest import Server, User, fixture_bodies

BODIES = fixture_bodies("dvclive_basic")


def post(conn: sqlite3.Connection, token: str, step: int, rows: int) -> int:
    body = {
        "type": "data",
        "repo_url": "git@github.com:acme/vision.git",
        "baseline_sha": "f" * 40,
        "client": "dvclive",
        "name": "big",
        "step": step,
        "plots": {
            f"dvclive/plots/metrics/{name}.tsv": {
                "data": [{"step": step + i, name: 0.5} for i in range(rows)]
            }
            for name in ("loss", "acc")
        },
    }
    job = ingest.ingest_job(token, ingest.parse(json.dumps(body).encode()), time.time)
    (experiment_id, _), _ = run_in_transaction(conn, [job, ingest.file_points_job])
    return int(experiment_id)


def count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


@pytest.mark.sqlite_only
def test_an_experiment_is_deleted_a_bounded_number_of_points_at_a_time(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    conn, token = ingest_db
    experiment_id = post(conn, token, 0, 30)  # two series of 30 points
    owner = repository.Principal(user_id=1, username="ada", is_admin=True)
    parts = []
    while True:
        (deleted,), _ = run_in_transaction(
            conn, [experiments.delete_points_job(owner, experiment_id, at_most=20)]
        )
        parts.append(deleted)
        if deleted < 20:
            break
    # Never more than asked, across series; a smaller part means nothing is left.
    assert parts == [20, 20, 20, 0]
    assert count(conn, "SELECT count(*) FROM points") == 0
    run_in_transaction(conn, [experiments.delete_job(owner, experiment_id)])
    assert count(conn, "SELECT count(*) FROM experiments") == 0
    assert count(conn, "SELECT count(*) FROM series") == 0

    # Someone who may not change the experiment deletes none of its points.
    experiment_id = post(conn, token, 0, 5)
    stranger = repository.Principal(user_id=999, username="eve", is_admin=False)
    (refused,), _ = run_in_transaction(
        conn, [experiments.delete_points_job(stranger, experiment_id, at_most=20)]
    )
    assert isinstance(refused, Exception)
    assert count(conn, "SELECT count(*) FROM points") == 10


@pytest.mark.sqlite_only
def test_a_projects_runs_are_deleted_a_bounded_number_of_points_and_runs_at_a_time(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    conn, token = ingest_db
    first = post(conn, token, 0, 30)  # two series of 30 points, shown by the project it made
    body = {**BODIES[1], "repo_url": "git@github.com:acme/vision.git"}
    others = []
    for name in ("b", "c", "d"):  # three more runs of the same repository, no points
        job = ingest.ingest_job(
            token, ingest.parse(json.dumps({**body, "name": name}).encode()), time.time
        )
        (run,), _ = run_in_transaction(conn, [job])
        others.append(run)
    (project_id,) = [r[0] for r in conn.execute("SELECT id FROM projects")]
    owner = repository.Principal(user_id=1, username="ada", is_admin=False)
    stranger = repository.Principal(user_id=999, username="eve", is_admin=False)
    (refused,), _ = run_in_transaction(conn, [projects.doomed_job(stranger, project_id)])
    assert isinstance(refused, Exception)
    (doomed,), _ = run_in_transaction(conn, [projects.doomed_job(owner, project_id)])
    assert doomed == sorted([first, *others])
    parts = []
    while True:
        job = projects.purge_part_job(owner, project_id, doomed, at_most=20, runs_at_most=2)
        ((done, runs),), _ = run_in_transaction(conn, [job])
        parts.append((count(conn, "SELECT count(*) FROM points"), runs))
        if done:
            break
    # 20 points a part, then the emptied runs two at a time; the project is still there.
    assert parts == [(40, 0), (20, 0), (0, 0), (0, 2), (0, 2)]
    assert count(conn, "SELECT count(*) FROM projects") == 1
    (runs,), _ = run_in_transaction(conn, [projects.delete_job(owner, project_id, doomed)])
    assert runs == 0
    for table in ("points", "series", "experiments", "projects"):
        assert count(conn, f"SELECT count(*) FROM {table}") == 0


@pytest.mark.sqlite_only
def test_old_events_are_pruned_a_bounded_number_at_a_time(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    conn, token = ingest_db
    for step in range(25):  # an experiment event and a points event each
        post(conn, token, step * 10, 1)
    total = count(conn, "SELECT count(*) FROM events")
    newest = count(conn, "SELECT max(id) FROM events")
    assert total >= 50
    parts = []
    while True:
        (pruned,), _ = run_in_transaction(conn, [prune_job(keep_events=10, at_most=15)])
        parts.append(pruned)
        if pruned < 15:
            break
    assert all(p <= 15 for p in parts) and sum(parts) == total - 10
    assert count(conn, "SELECT count(*) FROM events") == 10
    assert count(conn, "SELECT max(id) FROM events") == newest  # the newest always stays


@pytest.mark.sqlite_only
def test_a_user_keeps_only_their_newest_alerts_as_new_ones_come(
    ingest_db: tuple[sqlite3.Connection, str],
) -> None:
    conn, token = ingest_db
    experiment_id = post(conn, token, 0, 1)
    admin.add_user(
        Path(conn.execute("PRAGMA database_list").fetchone()[2]), "bo", "pw-pw-pw-pw", False
    )
    for user_id in (1, 2):
        conn.execute(
            "INSERT INTO watches (user_id, experiment_id, kind, created_at)"
            " VALUES (?, ?, 'stalled', 0)",
            (user_id, experiment_id),
        )
    condition = WatchCondition(kind="stalled")
    ada, bo = (WatchRecord(i, i, None, experiment_id, condition, None) for i in (1, 2))
    conn.execute("BEGIN")
    insert_alert(
        conn,
        watch=bo,
        experiment_id=experiment_id,
        experiment_name="big",
        project_id=None,
        dedupe="bo",
        now=0,
        title="t",
        detail="d",
        keep_alerts=3,
    )
    for n in range(6):
        insert_alert(
            conn,
            watch=ada,
            experiment_id=experiment_id,
            experiment_name="big",
            project_id=None,
            dedupe=str(n),
            now=n,
            title=f"t{n}",
            detail="d",
            keep_alerts=3,
        )
    conn.execute("COMMIT")
    titles = [r[0] for r in conn.execute("SELECT title FROM alerts WHERE user_id = 1 ORDER BY id")]
    assert titles == ["t3", "t4", "t5"]
    assert count(conn, "SELECT count(*) FROM alerts WHERE user_id = 2") == 1  # not ada's cap


def test_a_push_of_many_experiments_is_recorded_in_parts_and_counted_once(
    server: Server, alice: User
) -> None:
    body = fixture_bodies("dvclive_basic")[0]
    sha = body["baseline_sha"]
    names = [f"run-{i}" for i in range(3)]
    for name in names:
        assert alice.live({**body, "name": name}).status_code == 200
    ref = f"refs/exps/{sha[:2]}/{sha[2:]}/"
    unknown = [f"{ref}gone-{i}" for i in range(REFS_PER_JOB * 2)]
    pushed = [*unknown[:REFS_PER_JOB], *(ref + n for n in names), *unknown[REFS_PER_JOB:]]
    resp = alice.client.post(
        "/webhook/dvc",
        json={"repo_url": body["repo_url"], "client": "dvc", "refs": {"pushed": pushed}},
        headers={"Authorization": f"token {alice.token}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "ok", "pushed": 3, "removed": 0}
    rows = alice.client.get("/api/projects/1/experiments").json()
    assert sorted(r["name"] for r in rows if r["pushed"]) == names

"""The step rate an experiment row carries (``steps_per_s``), from the server's clock."""

from __future__ import annotations

import time

from backend.db.experiments import RATE_WINDOW, ExperimentRecord
from tests.conftest import Server, User, fixture_bodies


def record() -> ExperimentRecord:
    return ExperimentRecord(
        id=1,
        poster_id=1,
        repo_key="github.com/acme/rate",
        repo_url="https://github.com/acme/rate",
        baseline_sha="0" * 40,
        name="rate",
        client="dvclive",
        status="running",
        started_at=0.0,
        updated_at=0.0,
    )


def step_at(r: ExperimentRecord, now: float, step: int) -> float | None:
    r.step = step
    r.note_step(now)
    return r.steps_per_s


def test_the_rate_is_steps_over_seconds_between_the_oldest_and_newest_sample() -> None:
    r = record()
    assert step_at(r, 100.0, 0) is None  # one sample: no rate yet
    for i in range(1, 41):  # 8 steps a second for 5 s
        rate = step_at(r, 100.0 + i / 8, i)
    assert rate == 8.0


def test_a_pause_between_steps_lowers_the_rate_honestly() -> None:
    r = record()
    for i in range(9):
        step_at(r, 10.0 + i / 8, i)  # steps 0-8 in 1 s
    assert r.steps_per_s == 8.0
    # The client then posts its next step 7 s late: 9 steps over 8 s.
    assert step_at(r, 18.0, 9) == 9 / 8


def test_only_the_last_minute_counts() -> None:
    r = record()
    step_at(r, 0.0, 0)
    step_at(r, 1.0, 1)  # a slow start: 1 step a second...
    for i in range(2, 400):  # ...then 10 steps a second for ~40 s after a long pause
        step_at(r, 100.0 + i / 10, i)
    assert r.steps_per_s is not None and abs(r.steps_per_s - 10.0) < 0.3
    # One sample a second over the window: the memory is constant however fast it steps.
    assert r.step_samples is not None and len(r.step_samples) <= int(RATE_WINDOW) + 2


def test_a_step_that_goes_back_keeps_the_last_rate() -> None:
    r = record()
    for i in range(5):
        step_at(r, float(i), i * 2)
    assert r.steps_per_s == 2.0
    assert step_at(r, 6.0, 0) == 2.0  # a restarted run's first step is no rate of its own


def test_marking_another_run_failed_keeps_the_running_runs_rates(
    server: Server, alice: User
) -> None:
    # Marking a run Failed drops the writer's cache of records; the running runs read
    # again from the database sent their rows with no rate until they stepped twice more.
    body = fixture_bodies("dvclive_basic")[1]
    running = {**body, "name": "running"}
    for step in (0, 1):
        assert alice.live({**running, "step": step}).is_success
        time.sleep(0.05)
    other = alice.live({**body, "name": "other"}).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]

    def rate() -> float | None:
        rows = alice.client.get(f"/api/projects/{project_id}/experiments").json()
        return next(r["steps_per_s"] for r in rows if r["name"] == "running")

    assert rate() is not None
    failed = alice.client.post(f"/api/experiments/{other}/fail", json={"reason": "by hand"})
    assert failed.status_code == 200, failed.text
    assert alice.live({**running, "step": 2}).is_success
    assert rate() is not None


def test_a_resumed_run_measures_its_rate_anew(server: Server, alice: User) -> None:
    # The rate from before a pause would read the pause as a stall (and fire stall
    # watches) the moment the run is back.
    bodies = fixture_bodies("dvclive_basic")
    start, data = {**bodies[0], "name": "again"}, {**bodies[1], "name": "again"}
    assert alice.live(start).is_success
    for step in (0, 1):
        experiment_id = alice.live({**data, "step": step}).json()["experiment_id"]
        time.sleep(0.05)

    def row() -> dict:
        return alice.client.get(f"/api/experiments/{experiment_id}").json()

    assert row()["steps_per_s"] is not None
    assert alice.live({**data, "type": "done"}).is_success
    assert alice.live(start).is_success  # started again under the same name
    assert (row()["status"], row()["steps_per_s"]) == ("running", None)

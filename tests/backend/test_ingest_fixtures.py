"""Replay the captured client traffic through a real server and read it back."""

import base64
import uuid

import pytest

from tests.conftest import Server, User, fixture_bodies

EXPECTED_STATUS = {
    "dvclive_basic": "completed",
    "dvclive_nan_image": "completed",
    "dvclive_crash": "completed",  # DVCLive sends a normal done even when training raised
    "dvc_exp_run": "completed",
    "dvc_exp_run_fail": "failed",  # done from client dvc without experiment_rev
}


@pytest.fixture
def alice(shared_server: Server) -> User:
    """A new user on the module's one server: runs, and the projects made for them, belong
    to their poster, so the tests cannot see each other's (a server each costs seconds)."""
    return shared_server.add_user(f"alice-{uuid.uuid4().hex[:8]}")


def replay(user: User, name: str, times: int = 1) -> int:
    experiment_id = 0
    for _ in range(times):
        for body in fixture_bodies(name):
            resp = user.live(body)
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == "ok"
            experiment_id = resp.json()["experiment_id"]
    return experiment_id


def expected_series(name: str) -> dict[str, dict[int, object]]:
    series: dict[str, dict[int, object]] = {}
    for body in fixture_bodies(name):
        for path, plot in (body.get("plots") or {}).items():
            if "data" in plot:
                metric = path.split("plots/metrics/")[1].removesuffix(".tsv")
                for row in plot["data"]:
                    field = metric.rsplit("/", 1)[-1]
                    series.setdefault(metric, {})[row["step"]] = row[field]
    return series


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_fixture_gives_protocol_status_and_every_point(alice: User, name: str) -> None:
    experiment_id = replay(alice, name)
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["status"] == EXPECTED_STATUS[name]
    bodies = fixture_bodies(name)
    assert row["name"] == bodies[0]["name"]
    series = alice.client.get(f"/api/experiments/{experiment_id}/series").json()
    want = expected_series(name)
    assert sorted(series) == sorted(want) == row["series"]
    for metric, points in want.items():
        assert series[metric] == [[step, value] for step, value in sorted(points.items())]


def test_resending_a_whole_run_never_duplicates_points(alice: User) -> None:
    experiment_id = replay(alice, "dvclive_basic")
    for body in fixture_bodies("dvclive_basic")[1:]:  # every post again, but its `start`
        assert alice.live(body).json()["experiment_id"] == experiment_id
    series = alice.client.get(f"/api/experiments/{experiment_id}/series").json()
    assert [p[0] for p in series["train/loss"]] == [0, 1, 2, 3, 4]
    experiments = alice.client.get("/api/projects").json()
    assert experiments[0]["experiments"] == 1
    # With its `start`, as DVCLive run again sends it: the name run anew, kept apart.
    again = replay(alice, "dvclive_basic")
    assert again != experiment_id
    earlier = alice.client.get(f"/api/experiments/{experiment_id}/series").json()
    assert earlier == alice.client.get(f"/api/experiments/{again}/series").json()


def test_latest_metrics_params_nan_inf_and_image(alice: User) -> None:
    experiment_id = replay(alice, "dvclive_nan_image")
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["metrics"] == {"loss": 0.09999999999999998, "grad_norm": "inf"}
    assert row["params"] == {"opt": "adam"}
    assert row["step"] == 2
    series = alice.client.get(f"/api/experiments/{experiment_id}/series?names=loss").json()
    assert series == {"loss": [[0, 0.3], [1, "nan"], [2, 0.09999999999999998]]}
    assert row["images"][0]["path"] == "samples/pred.png"
    png = alice.client.get(f"/api/experiments/{experiment_id}/images/samples/pred.png")
    assert png.headers["content-type"] == "image/png"
    last_image = [
        b["plots"]["dvclive/plots/images/samples/pred.png"]["image"]
        for b in fixture_bodies("dvclive_nan_image")
        if "dvclive/plots/images/samples/pred.png" in (b.get("plots") or {})
    ][-1]
    assert png.content == base64.b64decode(last_image)


def test_dvc_exp_run_merges_params_of_both_clients(alice: User) -> None:
    experiment_id = replay(alice, "dvc_exp_run")
    row = alice.client.get(f"/api/experiments/{experiment_id}").json()
    assert row["params"]["params.yaml:lr"] == 0.2
    assert row["params"]["dvclive/params.yaml:lr"] == 0.01
    assert row["params"]["model/act"] == "relu"
    assert row["experiment_rev"] == "13b591354ef0ef37d8386bdbdd0b4651fb8134e3"
    assert row["client"] == "dvc"


def test_unknown_repo_creates_a_project_named_after_it(alice: User) -> None:
    replay(alice, "dvclive_basic")
    projects = alice.client.get("/api/projects").json()
    assert [(p["name"], p["experiments"], p["running"]) for p in projects] == [("mnist", 1, 0)]
    rows = alice.client.get(f"/api/projects/{projects[0]['id']}/experiments").json()
    assert rows[0]["metrics"]["train/loss"] == 0.2


def test_repo_url_spellings_land_in_one_project(alice: User) -> None:
    base = fixture_bodies("dvclive_basic")[1]
    for i, url in enumerate(
        ["git@github.com:Acme/Mnist.git", "https://github.com/acme/mnist", "github:acme/mnist"]
    ):
        assert alice.live({**base, "repo_url": url, "name": f"exp-{i}"}).status_code == 200
    projects = alice.client.get("/api/projects").json()
    assert len(projects) == 1 and projects[0]["experiments"] == 3


def test_running_filter_and_late_duplicate_does_not_resume(alice: User) -> None:
    bodies = fixture_bodies("dvclive_basic")
    for body in bodies[:-1]:
        alice.live(body)
    project = alice.client.get("/api/projects").json()[0]
    running = alice.client.get(f"/api/projects/{project['id']}/experiments?status=running").json()
    assert [r["name"] for r in running] == ["civil-worm"]
    assert project["running"] == 1
    alice.live(bodies[-1])  # done
    alice.live(bodies[-3])  # a late retry of the last step's data
    row = alice.client.get(f"/api/projects/{project['id']}/experiments").json()[0]
    assert row["status"] == "completed"
    later = {**bodies[-3], "step": 9}
    alice.live(later)  # a genuinely new step: the run was resumed
    row = alice.client.get(f"/api/projects/{project['id']}/experiments").json()[0]
    assert row["status"] == "running"
    bad = alice.client.get(f"/api/projects/{project['id']}/experiments?status=bogus")
    assert bad.status_code == 400 and "running" in bad.json()["detail"]

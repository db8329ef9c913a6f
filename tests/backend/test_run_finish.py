"""``POST /api/live/finish``: ``livestudio run`` ends its run Completed when DVCLive's own
``done`` was lost, and touches nothing else."""

from __future__ import annotations

import time
from contextlib import closing

import httpx

from backend.db.connection import connect_sync
from tests.conftest import Server, User, fixture_bodies

START, DATA = fixture_bodies("dvclive_basic")[:2]
DONE = {k: START[k] for k in ("repo_url", "baseline_sha", "name", "client")} | {"type": "done"}


def _post(server: Server, path: str, body: object, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)


FINISH = "/api/live/finish?since=0"
"""Any run that posted since 1970 (the wrapper gives the server's time as it started)."""


def _rows(user: User) -> list[dict]:
    rows: list[dict] = []
    for project in user.client.get("/api/projects").json():
        rows += user.client.get(f"/api/projects/{project['id']}/experiments").json()
    return rows


def test_finishing_ends_an_open_run_completed_and_only_that(server: Server, alice: User) -> None:
    finished = _post(server, FINISH, DONE, alice.token)
    assert finished.status_code == 200, finished.text
    assert finished.json() == {"status": "ok", "experiment_id": None}
    assert _rows(alice) == []  # a command that never used DVCLive gets no empty run

    for body in (START, DATA):
        assert _post(server, "/api/live", body, alice.token).status_code == 200
    (row,) = _rows(alice)
    assert row["status"] == "running"
    finished = _post(server, FINISH, DONE, alice.token)
    assert finished.json() == {"status": "ok", "experiment_id": row["id"]}
    (row,) = _rows(alice)
    assert (row["status"], row["errors"], row["step"]) == ("completed", [], DATA["step"])

    # An ended run is left as it is: a second finish changes nothing, nor turns Failed.
    assert _post(server, FINISH, DONE, alice.token).json()["experiment_id"] is None
    failed = DONE | {"errors": [{"cls": "ValueError", "text": "boom"}]}
    assert _post(server, "/api/live", failed, alice.token).status_code == 200
    assert _post(server, FINISH, DONE, alice.token).json()["experiment_id"] is None
    assert [r["status"] for r in _rows(alice)] == ["failed"]


def test_finishing_touches_no_other_users_run_and_refuses_wrong_credentials(
    server: Server, alice: User
) -> None:
    from backend.services.accounts import client_token

    bob = server.add_user("bob")
    assert _post(server, "/api/live", START, alice.token).status_code == 200
    # Bob names alice's run exactly: runs are per poster, so his finish finds none.
    assert _post(server, FINISH, DONE, bob.token).json()["experiment_id"] is None
    assert [r["status"] for r in _rows(alice)] == ["running"]
    assert _rows(bob) == []

    with closing(connect_sync(server.database)) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0]
        scoped = client_token(conn, user_id, "datasets-only", frozenset({"DATASETS"})).token
    session = alice.client.headers["Authorization"].split()[1]
    for token, status, fragment in (
        (None, 401, "DVC_STUDIO_TOKEN"),
        ("lst_nothing", 401, "invalid or has been revoked"),
        (session, 401, "This is a login session"),  # a login session is no access token
        (scoped, 403, "EXPERIMENTS"),
    ):
        refused = _post(server, FINISH, DONE, token)
        assert refused.status_code == status, (token, refused.text)
        assert fragment in refused.json()["detail"]
    assert [r["status"] for r in _rows(alice)] == ["running"]


def test_finishing_takes_only_a_valid_done_event(server: Server, alice: User) -> None:
    assert _post(server, "/api/live", START, alice.token).status_code == 200
    for body, fragment in (
        (DATA, "Only a DVCLive `done` finishes a run here"),
        (START, "Only a DVCLive `done` finishes a run here"),
        (DONE | {"baseline_sha": "nope"}, "`$.baseline_sha`"),
        ({"type": "done"}, "`repo_url`"),
    ):
        refused = _post(server, FINISH, body, alice.token)
        assert refused.status_code == 400, refused.text
        assert fragment in refused.json()["detail"]
    big = httpx.post(
        f"{server.url}/api/live/finish",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={"Authorization": f"token {alice.token}"},
        timeout=30,
    )
    assert big.status_code == 413  # the API's own 1 MiB: a done event is small
    assert [r["status"] for r in _rows(alice)] == ["running"]


def test_a_run_that_posted_nothing_since_the_command_started_is_left_as_it_is(
    server: Server, alice: User
) -> None:
    """A run crashed long ago (Stopped) and a name reused with DVC_EXP_NAME: a successful
    command that never used DVCLive turned the crash into a success."""
    for body in (START, DATA):
        assert _post(server, "/api/live", body, alice.token).status_code == 200
    (row,) = _rows(alice)
    later = time.time() + 5  # the wrapper started after the run's last post
    left = _post(server, f"/api/live/finish?since={later}", DONE, alice.token)
    assert left.status_code == 200 and left.json()["experiment_id"] is None
    assert [r["status"] for r in _rows(alice)] == ["running"]
    earlier = time.time() - 60
    done = _post(server, f"/api/live/finish?since={earlier}", DONE, alice.token)
    assert done.json()["experiment_id"] == row["id"]
    for since in ("", "nan", "inf", "x"):
        path = "/api/live/finish" + (f"?since={since}" if since else "")
        refused = _post(server, path, DONE, alice.token)
        assert refused.status_code == 400, refused.text
        assert "?since=SECONDS" in refused.json()["detail"]


def test_a_failure_goes_only_to_the_run_that_posted_since_the_command_started(
    server: Server, alice: User
) -> None:
    """DVCLive says `done` though training raised: the wrapper's failure makes that run
    Failed whatever its status. A run of the name that ended before the command started
    is left as it ended (the failure of a command that failed before DVCLive said a word
    used to turn an earlier Completed run Failed)."""
    failure = DONE | {"errors": [{"cls": "E", "text": "x"}]}
    refused = _post(server, FINISH, DONE | {"client": "dvc"}, alice.token)
    assert refused.status_code == 400 and "Only a DVCLive `done`" in refused.json()["detail"]
    for body in (START, DATA, DONE):
        assert _post(server, "/api/live", body, alice.token).status_code == 200
    assert [r["status"] for r in _rows(alice)] == ["completed"]
    later = time.time() + 5
    left = _post(server, f"/api/live/finish?since={later}", failure, alice.token)
    assert left.status_code == 200 and left.json()["experiment_id"] is None
    assert [r["status"] for r in _rows(alice)] == ["completed"]
    failed = _post(server, f"/api/live/finish?since={time.time() - 60}", failure, alice.token)
    assert failed.json()["experiment_id"] == _rows(alice)[0]["id"]
    assert [r["status"] for r in _rows(alice)] == ["failed"]


def test_a_failure_goes_to_a_run_named_by_its_script_only_if_it_is_the_commands(
    server: Server, alice: User
) -> None:
    """The script's own `exp_name` wins over the wrapper's name: the failure goes to the
    one run of the commit begun since the command started, unless another wrapped
    command's name says it is that command's; a success never looks past the name."""
    failure = DONE | {"name": "run-abc123", "errors": [{"cls": "ExitStatus", "text": "3"}]}
    before = {**START, "name": "going-on-before"}  # begun before the command: not its
    assert _post(server, "/api/live", before, alice.token).status_code == 200
    since = f"/api/live/finish?since={time.time():.6f}"
    time.sleep(0.01)
    bob = server.add_user("bob")  # another user's run: never
    assert _post(server, "/api/live", {**START, "name": "x"}, bob.token).status_code == 200
    other_wrapped = {**START, "name": "run-0f0f0f"}  # another `livestudio run`'s own run
    assert _post(server, "/api/live", other_wrapped, alice.token).status_code == 200
    own = {**START, "name": "named-by-script"}
    assert _post(server, "/api/live", own, alice.token).status_code == 200
    ended = DONE | {"name": "run-abc123"}  # a success: nothing found by its name, nothing done
    assert _post(server, since, ended, alice.token).json()["experiment_id"] is None
    finished = _post(server, since, failure, alice.token)
    rows = {r["name"]: r for r in _rows(alice)}
    assert finished.json()["experiment_id"] == rows["named-by-script"]["id"]
    assert rows["named-by-script"]["status"] == "failed"
    assert {rows[n]["status"] for n in ("going-on-before", "run-0f0f0f")} == {"running"}
    # Two runs begun since that could be the command's: neither is.
    for name in ("second", "third"):
        assert _post(server, "/api/live", {**START, "name": name}, alice.token).status_code == 200
    assert _post(server, since, failure, alice.token).json()["experiment_id"] is None
    assert {r["name"]: r["status"] for r in _rows(alice)}["second"] == "running"

"""The event stream on a real server: live delivery, replay, reset, heartbeats."""

import queue
import time

import pytest

from tests.backend.sse import Listener
from tests.conftest import Server, User, fixture_bodies

BODIES = fixture_bodies("dvclive_basic")


def session_headers(user: User) -> dict[str, str]:
    return {"Authorization": user.client.headers["Authorization"]}


def test_subscribe_post_receive_then_replay_exactly_the_missed_events(
    server: Server, alice: User
) -> None:
    first = alice.live(BODIES[0]).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    path = f"/api/projects/{project_id}/events"

    listener = Listener(server.url, path, session_headers(alice))
    alice.live(BODIES[1])
    alice.live(BODIES[2])
    seen = listener.take_until("points")
    kinds = [e.event for e in seen]
    # The plot-rows post only adds points: no second full row within a second.
    assert kinds == ["experiment", "points"]
    assert seen[0].data["metrics"]["train/loss"] == 1.0
    assert seen[1].data == {
        "experiment_id": first,
        "series": {"train/acc": [[0, 0.5]], "train/loss": [[0, 1.0]], "val/loss": [[0, 1.2]]},
    }
    ids = [int(e.id) for e in seen]
    assert ids == sorted(ids)
    listener.close()

    for body in BODIES[3:7]:  # while nobody listens
        alice.live(body)
    again = Listener(server.url, path, {**session_headers(alice), "Last-Event-ID": str(ids[-1])})
    missed = again.take(4)
    with pytest.raises(queue.Empty):
        again.events.get(timeout=0.5)
    missed_ids = [int(e.id) for e in missed]
    assert missed_ids == sorted(set(missed_ids)) and missed_ids[0] > ids[-1]
    assert [e.event for e in missed] == ["experiment", "points"] * 2
    assert [e.data["step"] for e in missed if e.event == "experiment"] == [1, 2]
    alice.live(BODIES[7])
    assert again.take(1)[0].data["step"] == 3
    again.close()


def test_all_projects_stream_sees_new_projects_and_counts(server: Server, alice: User) -> None:
    listener = Listener(server.url, "/api/events", session_headers(alice))
    alice.live(BODIES[0])
    seen = listener.take(2)
    assert [e.event for e in seen] == ["project", "experiment"]
    assert seen[0].data["name"] == "mnist" and seen[0].data["running"] == 1
    alice.live(BODIES[-1])  # done: counts change
    seen = listener.take(2)
    assert seen[0].event == "project" and seen[0].data["running"] == 0
    assert seen[1].data["status"] == "completed"
    listener.close()


def test_other_users_do_not_receive_my_events(server: Server, alice: User) -> None:
    bob = server.add_user("bob")
    listener = Listener(server.url, "/api/events", session_headers(bob))
    alice.live(BODIES[0])
    bob.live({**BODIES[0], "name": "bobs-run"})
    seen = listener.take(2)
    assert [e.data["name"] for e in seen] == ["mnist", "bobs-run"]
    with pytest.raises(queue.Empty):
        listener.events.get(timeout=0.5)
    listener.close()


def test_too_far_behind_gets_reset_and_idle_stream_gets_heartbeats(make_server) -> None:
    server = make_server(
        LIVESTUDIO_EVENT_RETENTION="3", LIVESTUDIO_SWEEP_INTERVAL="0.1", LIVESTUDIO_HEARTBEAT="0.2"
    )
    alice = server.add_user("alice")
    for body in BODIES[:6]:
        alice.live(body)
    time.sleep(0.5)  # the sweeper prunes the event table to the newest 3
    listener = Listener(server.url, "/api/events", {**session_headers(alice), "Last-Event-ID": "1"})
    reset = listener.take(1)[0]
    assert reset.event == "reset" and reset.data == {}
    time.sleep(0.7)
    assert listener.comments >= 3  # "connected" plus keep-alives
    listener.close()


def test_bad_last_event_id_is_a_400(server: Server, alice: User) -> None:
    resp = alice.client.get("/api/events", headers={"Last-Event-ID": "yesterday"})
    assert resp.status_code == 400 and "Last-Event-ID" in resp.json()["detail"]


def test_deleting_a_project_is_announced_to_its_members(server: Server, alice: User) -> None:
    made = alice.client.post(
        "/api/projects", json={"name": "tmp", "repo_url": "git@github.com:acme/tmp.git"}
    ).json()
    listener = Listener(server.url, "/api/events", session_headers(alice))
    assert alice.client.delete(f"/api/projects/{made['id']}").status_code == 204
    gone = listener.take(1)[0]
    assert gone.event == "project_deleted" and gone.data == {"project_id": made["id"]}
    listener.close()


def test_stopping_the_server_ends_open_streams_instead_of_waiting_on_them(
    server: Server, alice: User
) -> None:
    listener = Listener(
        server.url, "/api/events", {"Authorization": alice.client.headers["Authorization"]}
    )
    server.stop()
    listener._thread.join(10)
    assert not listener._thread.is_alive()  # the server ended the stream itself
    log = server.log.read_text() if server.log else ""
    assert "graceful shutdown exceeded" not in log, log[-1000:]


def test_a_stream_whose_events_are_all_someone_elses_still_gets_keep_alives(make_server) -> None:
    """Keep-alives count what was written to the client, not what reached the server: on a
    busy server a quiet project's stream was never written to, and proxies closed it."""
    server = make_server(LIVESTUDIO_HEARTBEAT="0.2")
    alice, bob = server.add_user("alice"), server.add_user("bob")
    bob.live({**BODIES[0], "repo_url": "git@github.com:bob/quiet.git"})
    (project,) = bob.client.get("/api/projects").json()
    listener = Listener(server.url, f"/api/projects/{project['id']}/events", session_headers(bob))
    until = time.monotonic() + 1.2
    step = 0
    while time.monotonic() < until:  # alice's events reach bob's stream and are filtered out
        assert alice.live({**BODIES[1], "step": step}).status_code == 200
        step += 1
        time.sleep(0.02)
    assert step > 20
    assert listener.comments >= 4  # "connected" plus a keep-alive every 0.2 s of silence
    with pytest.raises(queue.Empty):
        listener.events.get(timeout=0.1)
    listener.close()

"""Watches, alerts and baselines belong to one user: tried as another user, a stranger,
and with tokens of the wrong kind and scope; and every field a client sends is bounded."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from shared.watches import MIN_STALL_SECONDS
from tests.backend.sse import Listener
from tests.backend.test_access_model import BOB_REPO, scoped_token
from tests.conftest import Server, User, fixture_bodies

BODY = fixture_bodies("dvclive_basic")[1]


def setup(server: Server) -> tuple[User, User, int, int]:
    """Alice with a run in her project; Bob with his own."""
    alice = server.add_user("alice")
    bob = server.add_user("bob")
    experiment_id = alice.live(BODY).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    assert bob.live({**BODY, "repo_url": BOB_REPO}).status_code == 200
    return alice, bob, experiment_id, project_id


def test_watches_are_private_and_need_a_session_to_change(server: Server) -> None:
    alice, bob, experiment_id, project_id = setup(server)
    mine = alice.client.post(
        "/api/watches", json={"kind": "status", "experiment_id": experiment_id}
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["statuses"] == ["failed"]
    assert mine.json()["target"] == BODY["name"]
    watch_id = mine.json()["id"]
    # Another user: sees none of it, cannot touch it, cannot watch what they cannot see.
    assert bob.client.get("/api/watches").json() == []
    assert bob.client.delete(f"/api/watches/{watch_id}").status_code == 404
    threshold = {"kind": "threshold", "experiment_id": experiment_id, "metric": "loss"}
    threshold |= {"op": "<", "threshold": 0.5}
    assert bob.client.put(f"/api/watches/{watch_id}", json=threshold).status_code == 404
    changed = alice.client.put(f"/api/watches/{watch_id}", json=threshold)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["id"], changed.json()["kind"], changed.json()["threshold"]) == (
        watch_id,
        "threshold",
        0.5,
    )
    bad = alice.client.put(f"/api/watches/{watch_id}", json={**threshold, "op": None})
    assert bad.status_code == 400 and "needs `metric`, `op`" in bad.json()["detail"]
    for target in ({"experiment_id": experiment_id}, {"project_id": project_id}):
        refused = bob.client.post("/api/watches", json={"kind": "status", **target})
        assert refused.status_code == 404, refused.text
    assert bob.client.get(f"/api/projects/{project_id}/baseline").status_code == 404
    refused = bob.client.put(
        f"/api/projects/{project_id}/baseline", json={"experiment_id": experiment_id}
    )
    assert refused.status_code == 404
    # A stranger: 401 everywhere.
    for method, path in (
        ("GET", "/api/watches"),
        ("POST", "/api/watches"),
        ("DELETE", f"/api/watches/{watch_id}"),
        ("PUT", f"/api/watches/{watch_id}"),
        ("GET", "/api/alerts"),
        ("GET", f"/api/projects/{project_id}/baseline"),
        ("PUT", f"/api/projects/{project_id}/baseline"),
    ):
        assert httpx.request(method, f"{server.url}{path}", json={}).status_code == 401, path
    # Tokens: an EXPERIMENTS token reads but never changes; a MODELS token does neither.
    experiments = scoped_token(server, "alice", {"EXPERIMENTS"})
    models = scoped_token(server, "alice", {"MODELS"})

    def call(token: str, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kw)

    for token in (experiments, alice.token):
        assert [w["id"] for w in call(token, "GET", "/api/watches").json()] == [watch_id]
        assert call(token, "GET", "/api/alerts").status_code == 200
        for method, path, body in (
            ("POST", "/api/watches", {"kind": "status", "experiment_id": experiment_id}),
            ("DELETE", f"/api/watches/{watch_id}", None),
            ("PUT", f"/api/watches/{watch_id}", {"kind": "status", "project_id": project_id}),
            ("PUT", f"/api/projects/{project_id}/baseline", {"experiment_id": experiment_id}),
        ):
            refused = call(token, method, path, json=body)
            assert refused.status_code == 403 and "login session" in refused.json()["detail"]
    for path in ("/api/watches", "/api/alerts", f"/api/projects/{project_id}/baseline"):
        refused = call(models, "GET", path)
        assert refused.status_code == 403 and "EXPERIMENTS" in refused.json()["detail"]
    assert alice.client.delete(f"/api/watches/{watch_id}").status_code == 204
    assert alice.client.get("/api/watches").json() == []


BAD_WATCHES = [
    ({"kind": "status"}, "exactly one of"),
    ({"kind": "status", "experiment_id": 1, "project_id": 1}, "exactly one of"),
    ({"kind": "party", "experiment_id": 1}, "(in kind)"),
    ({"kind": "status", "experiment_id": 1, "statuses": ["running"]}, "(in statuses[0])"),
    ({"kind": "threshold", "experiment_id": 1, "metric": "loss"}, "needs `metric`, `op`"),
    ({"kind": "threshold", "experiment_id": 1, "metric": "x", "op": "=", "threshold": 1}, "op"),
    ({"kind": "stalled", "experiment_id": 1, "factor": 1}, "between 1.5 and 1000"),
    ({"kind": "nonfinite", "experiment_id": 1, "metric": "a\x1bb"}, "U+001B"),
    ({"kind": "nonfinite", "experiment_id": 1, "metric": "m" * 256}, "(in metric)"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "file:///etc/passwd"}, "https://"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "https://a b"}, "without spaces"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "h" * 3000}, "webhook_url"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "http://[::1"}, "not a valid URL"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "http://a:99999/"}, "not a valid URL"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": f"http://{'a' * 70}.com/"}, "valid URL"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "https://u:p@hooks.x/"}, "user name"),
    # Hosts that say by themselves that the server will not post there: refused now.
    ({"kind": "status", "experiment_id": 1, "webhook_url": "http://127.0.0.1:9/h"}, "not a public"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "http://[::ffff:10.0.0.1]/"}, "public"),
    ({"kind": "status", "experiment_id": 1, "webhook_url": "http://LocalHost./h"}, "not a public"),
    # The forms a resolver reads as IPv4 numbers, without asking DNS anything.
    *(
        ({"kind": "status", "experiment_id": 1, "webhook_url": f"http://{host}/h"}, "not a public")
        for host in ("2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::7f00:1]")
    ),
    # What is wrong with the URL itself is said first (and no control character echoed).
    ({"kind": "status", "experiment_id": 1, "webhook_url": "http://[fe80::1%25\x1b]/"}, "URL"),
]


def test_bad_watches_get_400_saying_what_to_send(server: Server, alice: User) -> None:
    for body, fragment in BAD_WATCHES:
        resp = alice.client.post("/api/watches", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert fragment in resp.json()["detail"], body
        assert "\x1b" not in resp.json()["detail"], body


def test_watches_per_user_are_bounded(server: Server, alice: User) -> None:
    project_id = alice.client.post(
        "/api/projects", json={"name": "p", "repo_url": "https://github.com/a/p"}
    ).json()["id"]
    for _ in range(100):
        made = alice.client.post("/api/watches", json={"kind": "status", "project_id": project_id})
        assert made.status_code == 201
    refused = alice.client.post("/api/watches", json={"kind": "status", "project_id": project_id})
    assert refused.status_code == 409 and "delete one" in refused.json()["detail"]


def test_alerts_reach_only_their_owner_and_private_webhooks_are_refused(server: Server) -> None:
    alice, bob, experiment_id, project_id = setup(server)
    # Bob joins Alice's project: he sees her runs, yet never her alerts.
    assert (
        alice.client.post(
            f"/api/projects/{project_id}/members", json={"username": "bob"}
        ).status_code
        == 201
    )
    assert bob.client.post(f"/api/invitations/{project_id}/accept").status_code == 200
    made = alice.client.post(
        "/api/watches",
        json={
            "kind": "status",
            "project_id": project_id,
            "statuses": ["failed", "completed"],
            # A name is judged when an alert is posted (this machine's resolves privately).
            "webhook_url": f"http://{socket.gethostname()}:9/hook",
        },
    )
    assert made.status_code == 201, made.text
    alice_events = Listener(server.url, "/api/events", dict(alice.client.headers))
    bob_events = Listener(server.url, "/api/events", dict(bob.client.headers))
    try:
        assert alice.live(
            {**BODY, "type": "done", "errors": [{"cls": "E", "text": "x"}]}
        ).is_success
        alert = next(e for e in alice_events.take_until("alert") if e.event == "alert")
        assert alert.data["experiment_id"] == experiment_id
        assert alert.data["title"].endswith(": failed at step 0")
        time.sleep(0.5)
        seen = [bob_events.events.get_nowait().event for _ in range(bob_events.events.qsize())]
        assert "alert" not in seen and "experiment" in seen
        assert bob.client.get("/api/alerts").json() == []
    finally:
        alice_events.close()
        bob_events.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alerts = alice.client.get("/api/alerts").json()
        if alerts and alerts[0]["deliveries"]:
            break
        time.sleep(0.1)
    (delivery,) = alerts[0]["deliveries"]  # refused outright: never retried
    assert delivery["status"] is None
    assert "LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE" in delivery["error"]


def test_baseline_is_kept_per_user_and_project(server: Server) -> None:
    alice, bob, experiment_id, project_id = setup(server)
    base = f"/api/projects/{project_id}/baseline"
    assert alice.client.get(base).json() == {"experiment_id": None}
    bob_experiment = bob.client.get(
        f"/api/projects/{bob.client.get('/api/projects').json()[0]['id']}/experiments"
    ).json()[0]["id"]
    refused = alice.client.put(base, json={"experiment_id": bob_experiment})
    assert refused.status_code == 404  # not shown in her project
    assert alice.client.put(base, json={"experiment_id": experiment_id}).json() == {
        "experiment_id": experiment_id
    }
    assert alice.client.get(base).json() == {"experiment_id": experiment_id}
    assert alice.client.delete(base).status_code == 204
    assert alice.client.get(base).json() == {"experiment_id": None}


def test_a_pinned_baseline_reaches_the_users_other_streams_and_nobody_elses(
    server: Server,
) -> None:
    """Pinned in one terminal, the other kept comparing with the old baseline until the
    project was opened again. Only the user's own streams of that project hear of it."""
    alice, bob, experiment_id, project_id = setup(server)
    invited = alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
    assert invited.status_code == 201
    assert bob.client.post(f"/api/invitations/{project_id}/accept").status_code == 200
    path = f"/api/projects/{project_id}/events"
    other = server.login("alice")  # her other terminal
    listeners = {
        "alice": Listener(server.url, path, {"Authorization": other.headers["Authorization"]}),
        "bob": Listener(server.url, path, {"Authorization": bob.client.headers["Authorization"]}),
    }
    try:
        time.sleep(0.5)  # (both streams open)
        base = f"/api/projects/{project_id}/baseline"
        assert alice.client.put(base, json={"experiment_id": experiment_id}).status_code == 200
        assert alice.live({**BODY, "step": 1}).status_code == 200  # then an experiment event
        heard = {name: listener.take_until("experiment") for name, listener in listeners.items()}
    finally:
        for listener in listeners.values():
            listener.close()
    pinned = [e.data for e in heard["alice"] if e.event == "baseline"]
    assert pinned == [{"project_id": project_id, "experiment_id": experiment_id}]
    assert all(e.event != "baseline" for e in heard["bob"])  # another member's is theirs


def test_private_addresses_are_recognised_in_every_form() -> None:
    import ipaddress

    from backend.services.webhooks import is_public

    for private in (
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "fec0::1",
        "fe80::1",
        "0.0.0.0",
        "::7f00:1",  # IPv4-compatible
        "::a9fe:a9fe",
        "::ffff:0:a00:1",  # IPv4-translated
        "64:ff9b:1::1",  # local-use NAT64
    ):
        assert not is_public(ipaddress.ip_address(private)), private
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822"):
        assert is_public(ipaddress.ip_address(public)), public


def test_a_status_fires_once_per_end_and_never_for_a_resent_done(server: Server) -> None:
    alice, _, experiment_id, project_id = setup(server)
    made = alice.client.post("/api/watches", json={"kind": "status", "project_id": project_id})
    assert made.status_code == 201
    done = {**BODY, "type": "done", "errors": [{"cls": "E", "text": "x"}]}

    def alerts() -> list[dict[str, object]]:
        time.sleep(0.6)  # the evaluator runs beside the writer
        return alice.client.get("/api/alerts").json()

    assert alice.live(done).status_code == 200
    assert alice.live(done).status_code == 200  # DVCLive re-sends; a retry overtakes
    assert len(alerts()) == 1
    # Resumed (past its last step), failing again: a second end, a second alert.
    assert alice.live(fixture_bodies("dvclive_basic")[0]).status_code == 200
    assert alice.live({**BODY, "type": "data", "step": 1}).status_code == 200
    assert alice.live(done).status_code == 200
    fired = alerts()
    assert len(fired) == 2 and {a["experiment_id"] for a in fired} == {experiment_id}
    # Run anew and failing before logging anything: the new run's end, its own alert.
    assert alice.live(fixture_bodies("dvclive_basic")[0]).status_code == 200
    assert alice.live(done).status_code == 200
    fired = alerts()
    assert len(fired) == 3 and len({a["experiment_id"] for a in fired}) == 2


def test_a_project_watch_follows_membership_as_it_changes(server: Server) -> None:
    """Runs starting and ending change a project's counts; the evaluator follows its
    membership from those events in place: a member who joins after the watch was made
    fires it, and once removed no longer does."""
    alice, bob, _, project_id = setup(server)
    made = alice.client.post("/api/watches", json={"kind": "status", "project_id": project_id})
    assert made.status_code == 201
    failed = {"type": "done", "errors": [{"cls": "E", "text": "x"}]}

    def bobs_run_fails(name: str) -> None:
        assert bob.live({**BODY, "name": name}).status_code == 200
        assert bob.live({**BODY, **failed, "name": name}).status_code == 200

    def names(wait: float) -> list[str]:
        time.sleep(wait)
        return sorted(a["title"].split(":")[0] for a in alice.client.get("/api/alerts").json())

    invited = alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
    assert invited.status_code == 201
    assert bob.client.post(f"/api/invitations/{project_id}/accept").status_code == 200
    bobs_run_fails("bob-member")
    deadline = time.monotonic() + 10
    while not names(0.1) and time.monotonic() < deadline:
        pass
    assert names(0) == ["bob-member"]
    removed = alice.client.delete(f"/api/projects/{project_id}/members/bob")
    assert removed.status_code == 204
    bobs_run_fails("bob-gone")
    assert names(1.0) == ["bob-member"]


def test_a_webhook_name_that_does_not_resolve_is_refused_as_a_private_one_is() -> None:
    # The delivery log must not tell a user which internal names the server's resolver
    # knows: a name that resolves privately and one that does not resolve read alike.
    from backend.services import webhooks

    def refusal(host: str) -> str:
        with pytest.raises(webhooks.Refused) as refused:
            asyncio.run(webhooks.pinned(f"http://{host}:9/hook"))
        return str(refused.value).replace(host, "HOST")

    assert refusal("nothing-here.invalid") == refusal("localhost")


def test_a_member_back_in_the_project_brings_no_false_stall(server: Server) -> None:
    """While Bob was out of the project no watch covered his runs, and the evaluator stopped
    following them: back in, a run still stepping, or one that had ended meanwhile, read
    as stalled since the step it had when he left."""
    alice, bob, _, project_id = setup(server)
    made = alice.client.post(
        "/api/watches", json={"kind": "stalled", "project_id": project_id, "factor": 3}
    )
    assert made.status_code == 201
    invited = alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
    assert invited.status_code == 201
    assert bob.client.post(f"/api/invitations/{project_id}/accept").status_code == 200

    def step(name: str, at: int, **more: object) -> None:
        assert bob.live({**BODY, "name": name, "step": at, **more}).status_code == 200

    for at in range(4):  # two runs of Bob's, a step every 0.2 s
        step("stepping", at)
        step("ending", at)
        time.sleep(0.2)
    assert alice.client.delete(f"/api/projects/{project_id}/members/bob").status_code == 204
    deadline = time.monotonic() + MIN_STALL_SECONDS + 1.5  # out for longer than a stall
    at = 4
    while time.monotonic() < deadline:
        step("stepping", at)
        at += 1
        time.sleep(0.2)
    step("ending", 4, type="done")  # it ends while he is out
    invited = alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
    assert invited.status_code == 201
    assert bob.client.post(f"/api/invitations/{project_id}/accept").status_code == 200
    for _ in range(10):  # back in, still stepping: two seconds of the evaluator's checks
        step("stepping", at)
        at += 1
        time.sleep(0.2)
    assert [a["title"] for a in alice.client.get("/api/alerts").json()] == []

"""Who may see and do what (SPEC §2, README "Security model"), tried with three users."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.db.connection import connect_sync
from backend.db.repository import Principal
from backend.db.writer import run_in_transaction
from backend.services import projects
from backend.services.accounts import client_token
from shared.repo_url import subdir_key
from tests.backend.sse import Listener
from tests.conftest import PASSWORD, Server, User, fixture_bodies

BODY = fixture_bodies("dvclive_basic")[1]
BOB_REPO = "git@github.com:bob/secret-model.git"


def scoped_token(server: Server, username: str, scopes: set[str]) -> str:
    """A client token as device login makes them, with the given scopes."""
    with closing(connect_sync(server.database)) as conn:  # the server's own kind of connection
        user_id = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]
        return client_token(conn, user_id, "scoped", frozenset(scopes)).token


def rows(user: User, project_id: int) -> list[dict[str, object]]:
    resp = user.client.get(f"/api/projects/{project_id}/experiments")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_membership_is_an_invitation_the_invited_user_accepts(server: Server) -> None:
    alice, bob, carol = (server.add_user(n) for n in ("alice", "bob", "carol"))
    bob_run = bob.live({**BODY, "repo_url": BOB_REPO}).json()["experiment_id"]
    # Alice makes a project on Bob's repository and "adds" him: only an invitation.
    project = alice.client.post("/api/projects", json={"name": "spy", "repo_url": BOB_REPO}).json()
    # The same project again (the same command twice) is refused; another name is not.
    again = alice.client.post("/api/projects", json={"name": "spy", "repo_url": BOB_REPO})
    assert again.status_code == 409 and f"(id {project['id']})" in again.json()["detail"]
    other = alice.client.post("/api/projects", json={"name": "spy-2", "repo_url": BOB_REPO})
    assert other.status_code == 201
    alice.client.delete(f"/api/projects/{other.json()['id']}")
    invited = alice.client.post(f"/api/projects/{project['id']}/members", json={"username": "bob"})
    assert invited.status_code == 201
    assert invited.json() == {"owner": "alice", "members": ["alice"], "invited": ["bob"]}
    assert rows(alice, project["id"]) == []
    for path in (f"/api/experiments/{bob_run}", f"/api/experiments/{bob_run}/series"):
        assert alice.client.get(path).status_code == 404
    assert alice.client.post(f"/api/experiments/{bob_run}/fail").status_code == 404
    assert alice.client.delete(f"/api/experiments/{bob_run}").status_code == 404
    # The project does not exist for Bob until he accepts; he sees the invitation.
    assert bob.client.get(f"/api/projects/{project['id']}/experiments").status_code == 404
    waiting = bob.client.get("/api/invitations").json()
    assert [(i["project_id"], i["project_name"], i["invited_by"]) for i in waiting] == [
        (project["id"], "spy", "alice")
    ]
    # Nobody else can answer it, and a stranger cannot even see it.
    assert carol.client.post(f"/api/invitations/{project['id']}/accept").status_code == 404
    assert httpx.get(f"{server.url}/api/invitations").status_code == 401
    assert bob.client.delete(f"/api/invitations/{project['id']}").status_code == 204
    assert bob.client.get("/api/invitations").json() == []
    assert rows(alice, project["id"]) == []
    # Invited again, he accepts: now his runs show there, with his consent.
    alice.client.post(f"/api/projects/{project['id']}/members", json={"username": "bob"})
    joined = bob.client.post(f"/api/invitations/{project['id']}/accept")
    assert joined.status_code == 200 and joined.json()["experiments"] == 1
    assert [r["id"] for r in rows(alice, project["id"])] == [bob_run]


def test_only_the_owner_adds_and_removes_members(server: Server) -> None:
    alice, bob, carol = (server.add_user(n) for n in ("alice", "bob", "carol"))
    alice.live(BODY)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    members = f"/api/projects/{project_id}/members"
    assert alice.client.post(members, json={"username": "bob"}).status_code == 201
    bob.client.post(f"/api/invitations/{project_id}/accept")
    # Bob is a member, not the owner: he can neither invite nor remove.
    refused = bob.client.post(members, json={"username": "carol"})
    assert refused.status_code == 403 and "owner" in refused.json()["detail"]
    assert bob.client.delete(f"{members}/alice").status_code == 403
    # Carol, a stranger to the project, is told it does not exist.
    assert carol.client.post(members, json={"username": "carol"}).status_code == 404
    assert carol.client.get(members).status_code == 404
    # Inviting a member again, or nobody, is refused with a sentence.
    assert alice.client.post(members, json={"username": "bob"}).status_code == 409
    assert alice.client.post(members, json={"username": "nobody"}).status_code == 404
    # The owner cannot leave; a member can; the owner can remove a member.
    assert alice.client.delete(f"{members}/alice").status_code == 409
    alice.client.post(members, json={"username": "carol"})
    carol.client.post(f"/api/invitations/{project_id}/accept")
    assert bob.client.get(members).json()["members"] == ["alice", "bob", "carol"]
    assert bob.client.delete(f"{members}/bob").status_code == 204
    assert bob.client.get(f"/api/projects/{project_id}/experiments").status_code == 404
    assert alice.client.delete(f"{members}/carol").status_code == 204
    assert project_id not in [p["id"] for p in carol.client.get("/api/projects").json()]
    assert carol.client.get(f"/api/projects/{project_id}/experiments").status_code == 404


def test_runs_are_deleted_or_failed_by_their_poster_or_the_owner(server: Server) -> None:
    alice, bob, carol = (server.add_user(n) for n in ("alice", "bob", "carol"))
    alice.live(BODY)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    for user in (bob, carol):
        alice.client.post(f"/api/projects/{project_id}/members", json={"username": user.name})
        user.client.post(f"/api/invitations/{project_id}/accept")
    bob_run = bob.live({**BODY, "name": "bob-run"}).json()["experiment_id"]
    bob_second = bob.live({**BODY, "name": "bob-second"}).json()["experiment_id"]
    # Carol sees Bob's run but is neither its poster nor the owner; the details say so
    # (the TUI asks only those who may), and who posted it.
    detail = {
        user.name: user.client.get(f"/api/experiments/{bob_run}").json()
        for user in (alice, bob, carol)
    }
    assert {name: d["may_change"] for name, d in detail.items()} == {
        "alice": True,  # the owner
        "bob": True,  # its poster
        "carol": False,
    }
    assert {d["poster"] for d in detail.values()} == {"bob"}
    for method, path in (
        ("POST", f"/api/experiments/{bob_run}/fail"),
        ("DELETE", f"/api/experiments/{bob_run}"),
    ):
        refused = carol.client.request(method, path)
        assert refused.status_code == 403 and "poster" in refused.json()["detail"]
    assert carol.client.get(f"/api/experiments/{bob_run}").json()["status"] == "running"
    # Bob (its poster) and Alice (the owner) may.
    assert bob.client.post(f"/api/experiments/{bob_run}/fail").json()["status"] == "failed"
    assert alice.client.delete(f"/api/experiments/{bob_second}").status_code == 204
    assert bob.client.get(f"/api/experiments/{bob_second}").status_code == 404


def test_access_tokens_do_only_what_their_scopes_allow(server: Server, alice: User) -> None:
    experiment_id = alice.live(BODY).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    models_only = scoped_token(server, "alice", {"MODELS"})
    experiments = scoped_token(server, "alice", {"EXPERIMENTS"})

    def call(token: str, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kw)

    reads = [
        "/api/projects",
        f"/api/projects/{project_id}/experiments",
        f"/api/experiments/{experiment_id}",
        f"/api/experiments/{experiment_id}/series",
        f"/api/projects/{project_id}/members",
    ]
    for path in reads:
        refused = call(models_only, "GET", path)
        assert refused.status_code == 403 and "EXPERIMENTS" in refused.json()["detail"], path
        for token in (experiments, alice.token):  # the profile token has every scope
            assert call(token, "GET", path).status_code == 200, path
    account_changes = [
        ("DELETE", "/api/user/token"),
        ("POST", "/api/user/token"),
        ("GET", "/api/user"),
        ("POST", "/api/user/password"),
        ("POST", f"/api/experiments/{experiment_id}/fail"),
        ("DELETE", f"/api/experiments/{experiment_id}"),
        ("POST", f"/api/projects/{project_id}/members"),
        ("DELETE", f"/api/projects/{project_id}/members/alice"),
        ("POST", f"/api/invitations/{project_id}/accept"),
        ("DELETE", f"/api/invitations/{project_id}"),
        ("DELETE", f"/api/projects/{project_id}"),
        ("POST", "/api/projects"),
        ("POST", "/api/device-login/approve"),
        ("POST", "/api/device-login/lookup"),
        ("GET", "/api/invitations"),
        ("POST", "/api/auth/logout"),
    ]
    for method, path in account_changes:
        for token in (models_only, experiments, alice.token):
            refused = call(token, method, path, json={})
            assert refused.status_code == 403, (method, path, refused.text)
            assert "login session" in refused.json()["detail"]
    # Nothing changed: the profile token still sends runs, the run is still there.
    assert call(alice.token, "POST", "/api/live", json=BODY).status_code == 200
    assert alice.client.get(f"/api/experiments/{experiment_id}").json()["status"] == "running"
    # Stranger and garbage credentials are 401, never more.
    for headers in ({}, {"Authorization": "Bearer lst_forged"}, {"Authorization": "Basic x"}):
        assert httpx.get(f"{server.url}/api/projects", headers=headers).status_code == 401


def test_a_removed_member_stream_goes_quiet_and_invitations_arrive_live(server: Server) -> None:
    alice, bob = server.add_user("alice"), server.add_user("bob")
    alice.live(BODY)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    bob_all = Listener(server.url, "/api/events", dict(bob.client.headers))
    try:
        alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
        event = bob_all.take_until("invitation")[-1]
        assert event.data["project_id"] == project_id and event.data["invited_by"] == "alice"
        bob.client.post(f"/api/invitations/{project_id}/accept")
        assert bob_all.take_until("project")[-1].data["id"] == project_id
        bob_project = Listener(
            server.url, f"/api/projects/{project_id}/events", dict(bob.client.headers)
        )
        alice.client.delete(f"/api/projects/{project_id}/members/bob")
        assert bob_project.take_until("project_deleted")[-1].data == {"project_id": project_id}
        assert bob_all.take_until("project_deleted")[-1].data == {"project_id": project_id}
        alice.live({**BODY, "step": 5})
        alice.live({**BODY, "step": 6})
        assert bob_project.events.empty() and bob_all.events.empty()
        bob_project.close()
    finally:
        bob_all.close()


def test_invitations_closed_elsewhere_reach_the_invitee_and_the_owner_live(server: Server) -> None:
    alice, bob, carol = (server.add_user(name) for name in ("alice", "bob", "carol"))
    alice.live(BODY)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    members = f"/api/projects/{project_id}/members"
    listeners = {
        user.name: Listener(server.url, "/api/events", dict(user.client.headers))
        for user in (alice, bob, carol)
    }
    alice_all, bob_all, carol_all = listeners.values()
    # An access token (a CI job's) learns nothing of invitations, as GET /api/invitations.
    bobs_token = Listener(server.url, "/api/events", {"Authorization": f"Bearer {bob.token}"})
    listeners["bob's token"] = bobs_token
    try:
        # The owner's list learns of the invitation (a project event), the invitee of it.
        assert alice.client.post(members, json={"username": "bob"}).status_code == 201
        assert alice_all.take_until("project")[-1].data["id"] == project_id
        bob_all.take_until("invitation")
        # Declined in one session: the invitee's other sessions and the owner hear of it.
        assert bob.client.delete(f"/api/invitations/{project_id}").status_code == 204
        closed = bob_all.take_until("invitation_closed")[-1]
        assert closed.data == {"project_id": project_id}
        alice_all.take_until("project")
        assert alice.client.get(members).json()["invited"] == []
        # Withdrawn by the owner: the invitee hears of it too.
        alice.client.post(members, json={"username": "bob"})
        bob_all.take_until("invitation")
        assert alice.client.delete(f"{members}/bob").status_code == 204
        assert bob_all.take_until("invitation_closed")[-1].data == {"project_id": project_id}
        assert bob.client.get("/api/invitations").json() == []
        # Nobody else hears of invitations that were never theirs.
        alice.live({**BODY, "step": 7})
        alice_all.take_until("experiment")
        assert carol_all.events.empty()
        bob.live({**BODY, "repo_url": "git@github.com:bob/own.git"})
        assert bobs_token.take(1)[0].event == "project"  # bob's own project: the first event
        # A member who is not the owner cannot invite or withdraw; a stranger gets 404.
        alice.client.post(members, json={"username": "bob"})
        bob.client.post(f"/api/invitations/{project_id}/accept")
        # Withdrawing an invitation that was accepted meanwhile removes nobody.
        late = alice.client.delete(f"{members}/bob", params={"only_invitation": "true"})
        assert late.status_code == 409 and "accepted the invitation" in late.json()["detail"]
        assert "bob" in alice.client.get(members).json()["members"]
        assert bob.client.post(members, json={"username": "carol"}).status_code == 403
        assert bob.client.delete(f"{members}/alice").status_code == 403
        assert carol.client.get(members).status_code == 404
        assert carol.client.post(members, json={"username": "carol"}).status_code == 404
        assert httpx.get(f"{server.url}{members}").status_code == 401
    finally:
        for listener in listeners.values():
            listener.close()


def test_login_is_throttled_per_address_and_per_user(server: Server, alice: User) -> None:
    def attempt(password: str, address: str, username: str = "alice", **headers: str):
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=30) as client:
            return client.post(
                f"{server.url}/api/auth/login",
                json={"username": username, "password": password},
                headers=headers,
            )

    # Per address: ten wrong guesses (at any names), then even the right password waits;
    # a forged X-Forwarded-For does not change the address (no proxy is trusted).
    answers = [
        attempt("wrong", "127.0.0.2", f"mallory{i}", **{"X-Forwarded-For": f"9.9.9.{i}"})
        for i in range(12)
    ]
    assert [a.status_code for a in answers] == [401] * 10 + [429, 429]
    throttled = attempt(PASSWORD, "127.0.0.2")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert "try again in" in throttled.json()["detail"]
    # Per user: after five wrong passwords from anywhere, each address must wait...
    assert [attempt("wrong", f"127.0.0.{host}").status_code for host in range(3, 8)] == [401] * 5
    slowed = attempt(PASSWORD, "127.0.0.7")
    assert slowed.status_code == 429 and "'alice'" in slowed.json()["detail"]
    assert int(slowed.headers["Retry-After"]) <= 30
    # ...on its own clock: an attacker retrying elsewhere never uses up Alice's turn,
    # and where she logged in before she is not slowed at all.
    assert attempt("wrong", "127.0.0.8").status_code == 401
    assert attempt(PASSWORD, "127.0.0.9").status_code == 200
    assert attempt(PASSWORD, "127.0.0.1").status_code == 200


def test_a_burst_of_concurrent_guesses_is_cut_off_at_the_limit(server: Server, alice: User) -> None:
    def guess(i: int) -> int:
        return httpx.post(
            f"{server.url}/api/auth/login",
            json={"username": "alice", "password": f"guess-{i}"},
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(guess, range(30)))
    assert answers.count(401) <= 10 and answers.count(429) >= 20


def test_guessing_the_current_password_with_a_session_is_throttled_for_that_account_only(
    server: Server, alice: User
) -> None:
    """Counted by address, one SSH user's typos (every TUI over SSH reaches the API from
    the server's own address) refused everyone's logins and password changes from there."""
    bob = server.add_user("bob")
    owner = server.login("alice")  # the owner's own login, beside a stolen one
    body = {"current_password": "wrong-password", "new_password": "another-password"}
    answers = [alice.client.post("/api/user/password", json=body) for _ in range(12)]
    assert [a.status_code for a in answers[:5]] == [400] * 5
    assert 429 in [a.status_code for a in answers]
    assert not any("your address" in a.text for a in answers)  # it is no address's fault
    again = alice.client.post("/api/user/password", json={**body, "current_password": PASSWORD})
    assert again.status_code == 429  # that login's turn is not up yet, right password or not
    # The owner's own change, the remedy for a stolen login, is not refused for its guesses.
    mine = owner.post("/api/user/password", json={**body, "current_password": PASSWORD})
    assert mine.status_code == 204, mine.text
    # From the same address, bob logs in and changes his password as ever.
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "bob", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    changed = bob.client.post("/api/user/password", json={**body, "current_password": PASSWORD})
    assert changed.status_code == 204, changed.text


def test_replaying_the_stream_shows_nothing_from_before_joining(server: Server) -> None:
    alice, carol = server.add_user("alice"), server.add_user("carol")
    oops = alice.live(
        {**BODY, "name": "oops", "params": {"p.yaml": {"secret": "DELETED-SECRET"}}}
    ).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    assert alice.client.delete(f"/api/experiments/{oops}").status_code == 204
    alice.live({**BODY, "name": "before", "params": {"p.yaml": {"note": "OLD-VALUE"}}})
    alice.client.post(f"/api/projects/{project_id}/members", json={"username": "carol"})
    carol.client.post(f"/api/invitations/{project_id}/accept")
    alice.live({**BODY, "name": "after"})
    headers = {**carol.client.headers, "Last-Event-ID": "0"}
    for path in (f"/api/projects/{project_id}/events", "/api/events"):
        stream = Listener(server.url, path, headers)
        try:
            seen = stream.take_until("experiment")
            assert seen[-1].data["name"] == "after", path
            shown = json.dumps([e.data for e in seen])
            assert "DELETED-SECRET" not in shown and "OLD-VALUE" not in shown
        finally:
            stream.close()
    # Joining shows the project's current runs, as a listing does: that is the consent.
    names = {r["name"] for r in rows(carol, project_id)}
    assert names == {"before", "after"}


def test_a_subdir_project_shows_the_runs_of_its_sub_project_however_spelled(
    server: Server, alice: User
) -> None:
    start = fixture_bodies("dvclive_basic")[0]
    repo = start["repo_url"]
    made = alice.client.post(
        "/api/projects", json={"name": "sub-a", "repo_url": repo, "subdir": "/sub/a/"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["subdir"] == "sub/a"
    outside = alice.client.post(
        "/api/projects", json={"name": "etc", "repo_url": repo, "subdir": "../../etc"}
    )
    assert outside.status_code == 400 and "leaves the repository" in outside.json()["detail"]
    # DVC sends the DVC root's path as the OS spells it (Windows: backslashes).
    for name, subdir in (("slash", "./sub/a/"), ("windows", "sub\\a"), ("other", "sub/b")):
        assert alice.live({**start, "name": name, "subdir": subdir}).status_code == 200
    assert alice.live({**start, "name": "root"}).status_code == 200
    projects = {p["name"]: p for p in alice.client.get("/api/projects").json()}
    shown = {r["name"]: r["subdir"] for r in rows(alice, projects["sub-a"]["id"])}
    assert shown == {"slash": "sub/a", "windows": "sub/a"}
    # The runs sub-a does not show went to a project of the whole repository (made for
    # them, so that no accepted data is invisible), which shows every run.
    (whole,) = [p for p in projects.values() if p["subdir"] is None]
    assert {r["name"] for r in rows(alice, whole["id"])} == {"slash", "windows", "other", "root"}


def test_deleting_a_project_deletes_the_owners_runs_no_other_project_shows(server: Server) -> None:
    alice, bob, carol = (server.add_user(n) for n in ("alice", "bob", "carol"))
    bob_run = bob.live({**BODY, "name": "bobs"}).json()["experiment_id"]  # makes bob's project
    alice_run = alice.live({**BODY, "name": "alices"}).json()["experiment_id"]
    alice.live({**fixture_bodies("dvclive_basic")[2], "name": "alices"})  # plot rows: series
    mine = {p["name"]: p["id"] for p in alice.client.get("/api/projects").json()}["mnist"]
    for user in (bob, carol):
        alice.client.post(f"/api/projects/{mine}/members", json={"username": user.name})
        assert user.client.post(f"/api/invitations/{mine}/accept").status_code == 200
    carol_run = carol.live({**BODY, "name": "carols"}).json()["experiment_id"]
    assert {r["id"] for r in rows(alice, mine)} == {bob_run, alice_run, carol_run}
    with closing(connect_sync(server.database)) as conn:
        assert series_of(conn, alice_run) == 3
    # Carol cannot delete it; Alice, the owner, can.
    assert carol.client.delete(f"/api/projects/{mine}").status_code == 403
    assert alice.client.delete(f"/api/projects/{mine}").status_code == 204
    # Bob's run shows in his own project still. Alice's run, which only this one showed,
    # is gone with it, not left invisible to everybody (her included); Carol's, not hers
    # to delete, moves to a project of Carol's own, as if she had left.
    (bobs,) = bob.client.get("/api/projects").json()
    assert [r["id"] for r in rows(bob, bobs["id"])] == [bob_run]
    assert alice.client.get("/api/projects").json() == []
    assert alice.client.get(f"/api/experiments/{alice_run}").status_code == 404
    (carols,) = carol.client.get("/api/projects").json()
    assert (carols["name"], carols["owner"]) == ("mnist", "carol")
    assert [r["id"] for r in rows(carol, carols["id"])] == [carol_run]
    with closing(connect_sync(server.database)) as conn:
        left = [r[0] for r in conn.execute("SELECT id FROM experiments ORDER BY id")]
        assert left == sorted([bob_run, carol_run])
        assert series_of(conn, alice_run) == 0


def series_of(conn, experiment_id: int) -> int:  # type: ignore[no-untyped-def]
    query = "SELECT COUNT(*) FROM series WHERE experiment_id = ?"
    return int(conn.execute(query, (experiment_id,)).fetchone()[0])


def test_a_member_who_leaves_or_is_removed_keeps_their_runs_in_a_project_of_their_own(
    server: Server,
) -> None:
    alice, bob, carol = (server.add_user(n) for n in ("alice", "bob", "carol"))
    alice.live({**BODY, "name": "alices"})
    shared = alice.client.get("/api/projects").json()[0]["id"]
    runs = {}
    for user in (bob, carol):
        alice.client.post(f"/api/projects/{shared}/members", json={"username": user.name})
        assert user.client.post(f"/api/invitations/{shared}/accept").status_code == 200
        runs[user.name] = user.live({**BODY, "name": f"{user.name}s"}).json()["experiment_id"]
        assert [p["id"] for p in user.client.get("/api/projects").json()] == [shared]
    listener = Listener(
        server.url, "/api/events", {"Authorization": bob.client.headers["Authorization"]}
    )
    assert bob.client.delete(f"/api/projects/{shared}/members/bob").status_code == 204
    assert alice.client.delete(f"/api/projects/{shared}/members/carol").status_code == 204
    for user in (bob, carol):
        (own,) = user.client.get("/api/projects").json()
        assert own["id"] != shared and own["name"] == "mnist" and own["owner"] == user.name
        assert [r["id"] for r in rows(user, own["id"])] == [runs[user.name]]
    # Bob's screens learn of it live: the old project goes, his own arrives.
    seen = listener.take(2)
    assert [e.event for e in seen] == ["project_deleted", "project"]
    listener.close()
    assert {r["name"] for r in rows(alice, shared)} == {"alices"}


def test_a_former_member_replaying_the_stream_gets_nothing_of_the_project(
    server: Server,
) -> None:
    alice, bob, dave = (server.add_user(n) for n in ("alice", "bob", "dave"))
    alice.live(BODY)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    for user in (bob, dave):
        alice.client.post(f"/api/projects/{project_id}/members", json={"username": user.name})
        assert user.client.post(f"/api/invitations/{project_id}/accept").status_code == 200
    for step in (1, 2):
        alice.live({**BODY, "step": step})
    assert alice.client.delete(f"/api/projects/{project_id}/members/dave").status_code == 204

    def replayed(user: User) -> list[str]:
        headers = {"Authorization": user.client.headers["Authorization"], "Last-Event-ID": "0"}
        listener = Listener(server.url, "/api/events", headers)  # returns once it is live
        kinds = []
        while not listener.events.empty():
            kinds.append(listener.events.get().event)
        listener.close()
        return kinds

    # The history is a member's to read: Bob, still one, gets it all again...
    assert {"project", "experiment"} <= set(replayed(bob))
    # ...Dave, removed, only learns that the project is gone, with either credential.
    assert set(replayed(dave)) <= {"project_deleted", "invitation"}
    dave_token = User(dave.name, dave.token, httpx.Client(base_url=server.url))
    dave_token.client.headers["Authorization"] = f"token {dave.token}"
    assert set(replayed(dave_token)) <= {"project_deleted", "invitation"}
    assert dave.client.get(f"/api/projects/{project_id}/events").status_code == 404


def test_removing_members_is_no_way_to_learn_who_has_an_account(server: Server) -> None:
    alice, bob = server.add_user("alice"), server.add_user("bob")
    server.add_user("carol")  # exists, in no project
    alice.live(BODY)
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
    bob.client.post(f"/api/invitations/{project_id}/accept")
    for user in (alice, bob):  # the owner, and a member who may not remove others
        answers = []
        for name in ("carol", "mallory"):
            resp = user.client.delete(f"/api/projects/{project_id}/members/{name}")
            answers.append((resp.status_code, resp.json()["detail"].replace(name, "NAME")))
        assert answers[0] == answers[1], answers
        assert answers[0][0] == (404 if user is alice else 403)


def test_a_run_that_moves_to_another_subdir_still_shows_to_its_poster(
    server: Server, alice: User
) -> None:
    start, made, run = run_in_subdir_project(alice)
    assert [r["id"] for r in rows(alice, made["id"])] == [run]
    old_stream = Listener(
        server.url, f"/api/projects/{made['id']}/events", dict(alice.client.headers)
    )
    whole = alice.client.post(
        "/api/projects", json={"name": "all", "repo_url": start["repo_url"]}
    ).json()
    whole_stream = Listener(
        server.url, f"/api/projects/{whole['id']}/events", dict(alice.client.headers)
    )
    # The same run starts again from another sub-project (a resumed run in a moved folder).
    assert alice.live({**start, "subdir": "b"}).json()["experiment_id"] == run
    # Who watches the old project sees it go, and the counts change.
    seen = old_stream.take(2)
    old_stream.close()
    assert (seen[0].event, seen[0].data["experiment_id"]) == ("deleted", run)
    assert seen[1].event == "project" and seen[1].data["experiments"] == 0
    # A project of the whole repository shows it in both places: only its new row.
    moved = whole_stream.take_until("experiment")
    whole_stream.close()
    assert "deleted" not in [e.event for e in moved] and moved[-1].data["subdir"] == "b"
    assert alice.client.get(f"/api/experiments/{run}").status_code == 200
    assert rows(alice, made["id"]) == []
    assert [r["id"] for r in rows(alice, whole["id"])] == [run]


def test_guessing_from_ever_more_addresses_hits_a_cap_that_known_addresses_skip(
    server: Server,
) -> None:
    dave = server.add_user("dave")  # logs in from 127.0.0.1 (the test client's address)

    def attempt(password: str, address: str) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=30) as client:
            return client.post(
                f"{server.url}/api/auth/login", json={"username": "dave", "password": password}
            )

    # Each new address gets one try; after 30 failures for Dave, new addresses get none.
    answers = [attempt("wrong", f"127.0.1.{n}").status_code for n in range(1, 33)]
    assert answers == [401] * 30 + [429, 429]
    refused = attempt(PASSWORD, "127.0.2.1")
    assert refused.status_code == 429 and "logged in before" in refused.json()["detail"]
    # Dave, where he logged in before, is not kept out; nor after a restart (the server
    # remembers where its users logged in from in the database, not only in memory).
    assert attempt(PASSWORD, "127.0.0.1").status_code == 200
    server.stop()
    server.start()
    assert [attempt("wrong", f"127.0.3.{n}").status_code for n in range(1, 32)][-1] == 429
    assert attempt(PASSWORD, "127.0.4.1").status_code == 429
    assert attempt(PASSWORD, "127.0.0.1").status_code == 200
    assert dave.client.get("/api/user").status_code == 200
    # Nor when he changes his password from there (it asks for the current one).
    changed = dave.change_password(PASSWORD, PASSWORD + "-new", reset_tokens=False)
    assert changed.status_code == 204, changed.text


def test_an_ipv6_client_counts_by_its_64() -> None:
    from backend.services.throttle import client_key

    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("127.0.0.5") == "127.0.0.5"
    assert client_key("::ffff:10.0.0.1") == "::ffff:10.0.0.1"  # an IPv4 client


@pytest.mark.sqlite_only
def test_subdirs_stored_before_version_19_get_the_one_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.db import migrations

    conn = connect_sync(tmp_path / "old.db")
    older = tuple(m for m in migrations.MIGRATIONS if m[0] < 19)
    monkeypatch.setattr(migrations, "MIGRATIONS", older)
    migrations.migrate(conn)
    assert migrations.MIGRATIONS[-1][0] == 18
    conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('u', 'x', 0)")
    spellings = ["sub\\a", "./sub/b/", "/c/", "plain", "/", "./", "."]
    for i, subdir in enumerate(spellings, 1):
        conn.execute(
            "INSERT INTO projects (id, name, repo_url, repo_key, subdir, owner_id, created_at)"
            " VALUES (?, ?, 'https://github.com/a/b', 'github.com/a/b', ?, 1, 0)",
            (i, f"p{i}", subdir),
        )
    monkeypatch.undo()
    migrations.migrate(conn)
    stored = [r[0] for r in conn.execute("SELECT subdir FROM projects ORDER BY id")]
    assert stored == ["sub/a", "sub/b", "c", "plain", None, None, None]
    assert stored == [subdir_key(s) for s in spellings]


def test_a_run_moving_out_of_its_only_project_gets_one_of_the_repository(
    server: Server, alice: User
) -> None:
    start, made, run = run_in_subdir_project(alice)
    assert alice.live({**start, "subdir": "b"}).json()["experiment_id"] == run
    (whole,) = [p for p in alice.client.get("/api/projects").json() if p["id"] != made["id"]]
    assert whole["subdir"] is None and [r["id"] for r in rows(alice, whole["id"])] == [run]


def test_an_admin_member_deleting_a_project_leaves_the_owners_runs_with_the_owner(
    server: Server,
) -> None:
    from cli import admin

    alice = server.add_user("alice")
    admin.add_user(server.database, "root", PASSWORD, admin=True)
    root = User("root", "", server.login("root"))
    run = alice.live({**BODY, "name": "alices"}).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    alice.client.post(f"/api/projects/{project_id}/members", json={"username": "root"})
    assert root.client.post(f"/api/invitations/{project_id}/accept").status_code == 200
    assert root.client.delete(f"/api/projects/{project_id}").status_code == 204
    (own,) = alice.client.get("/api/projects").json()
    assert own["id"] != project_id and [r["id"] for r in rows(alice, own["id"])] == [run]
    assert root.client.get("/api/projects").json() == []


def run_in_subdir_project(alice: User) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Alice's project of subdir ``a`` and a run she starts there: (start body, project, id)."""
    start = fixture_bodies("dvclive_basic")[0]
    made = alice.client.post(
        "/api/projects", json={"name": "a", "repo_url": start["repo_url"], "subdir": "a"}
    ).json()
    run = alice.live({**start, "subdir": "a"}).json()["experiment_id"]
    return start, made, int(run)


def _cut_off_deletion(server: Server, username: str, project_id: int) -> tuple[bool, int]:
    """Start deleting a project as ``username`` does, and stop after its first part, as a
    server stopped part-way would (the server itself is stopped meanwhile); what the part
    did: (whether no run is left to delete, how many went)."""
    with closing(connect_sync(server.database)) as conn:
        row = conn.execute(
            "SELECT id, is_admin FROM users WHERE username = ?", (username,)
        ).fetchone()
        user = Principal(row[0], username, bool(row[1]))
        (doomed,), _ = run_in_transaction(conn, [projects.doomed_job(user, project_id)])
        part = projects.purge_part_job(user, project_id, doomed, runs_at_most=1)
        ((done, gone),), _ = run_in_transaction(conn, [part])
        return done, gone


def _unfinished(server: Server) -> int:
    with closing(connect_sync(server.database)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM project_deletions").fetchone()[0])


def test_a_project_deletion_cut_off_by_a_stop_is_finished_when_the_server_starts(
    server: Server,
) -> None:
    alice, bob = (server.add_user(n) for n in ("alice", "bob"))
    alices = [alice.live({**BODY, "name": f"run{i}"}).json()["experiment_id"] for i in range(3)]
    mine = alice.client.get("/api/projects").json()[0]["id"]
    alice.client.post(f"/api/projects/{mine}/members", json={"username": "bob"})
    assert bob.client.post(f"/api/invitations/{mine}/accept").status_code == 200
    bobs = bob.live({**BODY, "name": "bobs"}).json()["experiment_id"]
    server.stop()
    assert _cut_off_deletion(server, "alice", mine) == (False, 1)  # one run of three went
    assert _unfinished(server) == 1
    server.start()
    # The server finishes it as it starts: the project and all of alice's runs go, bob's
    # run moves to a project of his own, and nothing is left noted.
    for _ in range(300):
        if alice.client.get("/api/projects").json() == []:
            break
        time.sleep(0.1)
    assert alice.client.get("/api/projects").json() == []
    assert [alice.client.get(f"/api/experiments/{r}").status_code for r in alices] == [404] * 3
    (own,) = bob.client.get("/api/projects").json()
    assert (own["owner"], [r["id"] for r in rows(bob, own["id"])]) == ("bob", [bobs])
    assert _unfinished(server) == 0


def test_a_cut_off_deletion_its_user_may_no_longer_make_is_dropped(server: Server) -> None:
    alice, dave = (server.add_user(n) for n in ("alice", "dave"))
    runs = [alice.live({**BODY, "name": f"run{i}"}).json()["experiment_id"] for i in range(2)]
    mine = alice.client.get("/api/projects").json()[0]["id"]
    alice.client.post(f"/api/projects/{mine}/members", json={"username": "dave"})
    assert dave.client.post(f"/api/invitations/{mine}/accept").status_code == 200
    server.stop()
    with closing(connect_sync(server.database)) as conn:  # dave is an admin, then not
        conn.execute("UPDATE users SET is_admin = ? WHERE username = 'dave'", (True,))
    assert _cut_off_deletion(server, "dave", mine) == (True, 0)  # an admin member; no runs
    with closing(connect_sync(server.database)) as conn:
        conn.execute("UPDATE users SET is_admin = ? WHERE username = 'dave'", (False,))
    server.start()
    for _ in range(300):
        if _unfinished(server) == 0:
            break
        time.sleep(0.1)
    assert _unfinished(server) == 0  # refused now: the note is dropped, the project stays
    assert [p["id"] for p in alice.client.get("/api/projects").json()] == [mine]
    assert {r["id"] for r in rows(alice, mine)} == set(runs)


def test_an_upper_case_git_suffix_is_one_repository_and_stored_keys_are_mended(
    server: Server, alice: User
) -> None:
    # `Vision.GIT` kept ".git" in its key (only a lower-case one was dropped), so it was a
    # project of its own; migration 22 mends keys stored that way.
    from backend.db.migrations import rekey_git_suffix

    start = fixture_bodies("dvclive_basic")[0]
    lower = alice.live({**start, "name": "a", "repo_url": "git@github.com:acme/vision.git"})
    upper = alice.live({**start, "name": "b", "repo_url": "git@github.com:Acme/Vision.GIT"})
    assert lower.status_code == upper.status_code == 200
    (project,) = alice.client.get("/api/projects").json()
    assert {r["name"] for r in rows(alice, project["id"])} == {"a", "b"}
    with closing(connect_sync(server.database)) as conn:
        # As an older version stored it: the key with ".git", for a run and a project.
        url = "git@github.com:Acme/Other.GIT"
        conn.execute(
            "UPDATE experiments SET repo_url = ?, repo_key = ? WHERE name = 'b'",
            (url, "github.com/acme/other.git"),
        )
        conn.execute(
            "UPDATE projects SET repo_url = ?, repo_key = ? WHERE id = ?",
            (url, "github.com/acme/other.git", project["id"]),
        )
        # The same run posted under both spellings was two runs: re-keyed, it would
        # clash with its twin, so it moves renamed and both show.
        twin = {**start, "name": "twin"}
        assert alice.live({**twin, "repo_url": "https://github.com/acme/other"}).is_success
        assert alice.live({**twin, "repo_url": "git@github.com:acme/elsewhere.git"}).is_success
        conn.execute(
            "UPDATE experiments SET repo_url = ?, repo_key = ?"
            " WHERE name = 'twin' AND repo_key = 'github.com/acme/elsewhere'",
            (url, "github.com/acme/other.git"),
        )
        rekey_git_suffix(conn)
        twins = conn.execute(
            "SELECT name, repo_key FROM experiments WHERE name LIKE 'twin%' ORDER BY name"
        ).fetchall()
        assert [tuple(t) for t in twins] == [
            ("twin", "github.com/acme/other"),
            ("twin (.GIT)", "github.com/acme/other"),
        ]
        keys = {
            row[0]
            for table in ("projects", "experiments")
            for row in conn.execute(f"SELECT repo_key FROM {table}").fetchall()
        }
        commit = getattr(conn, "commit", None)
        if commit is not None:
            commit()
    assert "github.com/acme/other" in keys and "github.com/acme/other.git" not in keys


def test_migration_23_scrubs_credentials_stored_in_repository_urls(server: Server) -> None:
    """Before version 23 an https URL was stored as sent, user and password included:
    the migration removes them from projects, runs and the events a stream replays."""
    from backend.db.migrations import scrub_repo_credentials

    alice, bob = server.add_user("alice"), server.add_user("bob")
    start = fixture_bodies("dvclive_basic")[0]
    url = "https://gitlab.example.com/team/proj.git"
    assert alice.live({**start, "repo_url": url}).status_code == 200
    (project,) = alice.client.get("/api/projects").json()
    invited = alice.client.post(f"/api/projects/{project['id']}/members", json={"username": "bob"})
    assert invited.status_code in (200, 201), invited.text
    secret = "https://gitlab-ci-token:glcbt-SECRET@gitlab.example.com/team/proj.git"
    with closing(connect_sync(server.database)) as conn:
        conn.execute("UPDATE projects SET repo_url = ?", (secret,))  # as stored before
        conn.execute("UPDATE experiments SET repo_url = ?, row_version = 0", (secret,))
        for event_id, data in conn.execute(
            "SELECT id, data FROM events WHERE kind IN ('project', 'invitation')"
        ).fetchall():
            conn.execute(
                "UPDATE events SET data = ? WHERE id = ?",
                (bytes(data).replace(url.encode(), secret.encode()), event_id),
            )
        assert "SECRET" in alice.client.get("/api/projects").text  # the leak being mended
        scrub_repo_credentials(conn)
        stored = [
            bytes(row[0]) if not isinstance(row[0], str) else row[0].encode()
            for query in (
                "SELECT repo_url FROM projects",
                "SELECT repo_url FROM experiments",
                "SELECT data FROM events",
            )
            for row in conn.execute(query).fetchall()
        ]
        commit = getattr(conn, "commit", None)
        if commit is not None:
            commit()
    assert stored and not any(b"SECRET" in s for s in stored)
    assert sum(url.encode() in s for s in stored) >= 3  # the URL itself is kept
    shown = alice.client.get("/api/projects").text + bob.client.get("/api/invitations").text
    assert "SECRET" not in shown and url in shown


def test_one_account_cannot_bury_another_in_projects_or_invitations(server: Server) -> None:
    """5,000 projects took one user six seconds, and 2,000 invitations from a stranger put
    a colleague's real one at the bottom of the list: both are bounded, with a sentence."""
    from backend.services.quotas import MAX_OWNED_PROJECTS, MAX_WAITING_INVITATIONS

    alice, dave, carol = (server.add_user(n) for n in ("alice", "dave", "carol"))
    real = alice.client.post("/api/projects", json={"name": "real", "repo_url": "git@h:a/r.git"})
    alice.client.post(f"/api/projects/{real.json()['id']}/members", json={"username": "carol"})

    def make(i: int) -> int:
        made = dave.client.post("/api/projects", json={"name": f"p{i}", "repo_url": f"git@h:d/{i}"})
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(make, range(MAX_OWNED_PROJECTS)))
    for i, project_id in enumerate(ids[: MAX_WAITING_INVITATIONS + 1]):
        invited = dave.client.post(
            f"/api/projects/{project_id}/members", json={"username": "carol"}
        )
        if i < MAX_WAITING_INVITATIONS:
            assert invited.status_code == 201, invited.text
            continue
        assert invited.status_code == 409
        assert invited.json()["detail"] == (
            f"carol has {MAX_WAITING_INVITATIONS} of your invitations to answer already, the"
            " most one user may have waiting from another; wait until they answer some."
        )
    # Renewing one already waiting is no new one; another inviter's still arrive.
    again = dave.client.post(f"/api/projects/{ids[0]}/members", json={"username": "carol"})
    assert again.status_code == 201
    waiting = carol.client.get("/api/invitations").json()
    assert len(waiting) == MAX_WAITING_INVITATIONS + 1
    assert "alice" in {i["invited_by"] for i in waiting}
    # Past the projects an account may own: by hand, and by a run on a new repository.
    refused = dave.client.post("/api/projects", json={"name": "one", "repo_url": "git@h:d/x"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"This account owns {MAX_OWNED_PROJECTS:,} projects, the most one account may;"
        " delete some it no longer needs first."
    )
    posted = dave.live({**BODY, "repo_url": "git@github.com:dave/brand-new.git"})
    assert posted.status_code == 409 and "owns 1,000 projects" in posted.json()["detail"]
    assert dave.client.delete(f"/api/projects/{ids[-1]}").status_code in (202, 204)
    deadline = time.monotonic() + 30
    while (
        made := dave.live({**BODY, "repo_url": "git@github.com:dave/brand-new.git"})
    ).status_code != 200:
        assert time.monotonic() < deadline, made.text  # once the deleted one is purged
        time.sleep(0.2)


def test_an_admin_lists_users_resets_a_password_and_locks_someone_out(server: Server) -> None:
    """A forgotten password, a colleague who left: nothing but a database edit did it."""
    from tests.conftest import run_cli

    server.add_user("alice")  # the first user: admin
    bob = server.add_user("bob")
    experiment_id = bob.live(BODY).json()["experiment_id"]
    listed = run_cli("user", "list", db=server.database)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("alice  admin") and lines[1].startswith("bob  user")
    assert "owns 1 projects" in lines[1] and "LOCKED" not in listed.stdout
    # A forgotten password: set anew; the old logins end, tokens keep working.
    reset = run_cli(
        "user", "password", "bob", "--password-stdin", db=server.database, stdin="n3w-password!\n"
    )
    assert reset.returncode == 0, reset.stderr
    assert bob.client.get("/api/projects").status_code == 401  # the old login ended
    assert server.login("bob", "n3w-password!").get("/api/projects").status_code == 200
    assert bob.live(BODY).status_code == 200
    # Gone from the team: no login, token or password lets them in, no watch of theirs
    # sends them news any more; their runs stay.
    session = server.login("bob", "n3w-password!")
    hook = {"kind": "status", "experiment_id": experiment_id, "webhook_url": "https://x.org/h"}
    assert session.post("/api/watches", json=hook).status_code == 201
    locked = run_cli("user", "lock", "bob", db=server.database)
    assert locked.returncode == 0 and "Locked bob out" in locked.stdout
    assert "no admin can log in" not in locked.stdout  # alice still can
    assert session.get("/api/projects").status_code == 401
    assert bob.live(BODY).status_code == 401
    with closing(connect_sync(server.database)) as conn:
        watches = conn.execute("SELECT COUNT(*) FROM watches").fetchone()[0]
        (bobs,) = [r[0] for r in conn.execute("SELECT id FROM projects")]
    assert watches == 0
    # Their project is handed to someone who can manage it (its owner cannot any more);
    # not to someone locked out, nor to one owning a project of that name and repository.
    to_locked = run_cli("project", "owner", str(bobs), "bob", db=server.database)
    assert to_locked.returncode == 0  # (bob owns it already: nothing to do)
    server.add_user("dora")
    run_cli("user", "lock", "dora", db=server.database)
    refused = run_cli("project", "owner", str(bobs), "dora", db=server.database)
    assert refused.returncode == 1 and "locked out" in refused.stderr
    handed = run_cli("project", "owner", str(bobs), "alice", db=server.database)
    assert handed.stdout == f"alice owns project 'mnist' (id {bobs}) now.\n", handed
    server.add_user("carol")
    invited = server.login("alice").post(
        f"/api/projects/{bobs}/members", json={"username": "carol"}
    )
    assert invited.status_code == 201, invited.text
    for password in ("n3w-password!", "!locked", ""):
        tried = httpx.post(
            f"{server.url}/api/auth/login", json={"username": "bob", "password": password}
        )
        assert tried.status_code in (400, 401), tried.text
    listed = run_cli("user", "list", db=server.database)
    assert listed.stdout.splitlines()[1].startswith("bob  user")
    assert listed.stdout.splitlines()[1].endswith("0 tokens  0 logins  LOCKED")
    # And back: a new password lets them in again.
    run_cli(
        "user", "password", "bob", "--password-stdin", db=server.database, stdin="back-again!\n"
    )
    again = server.login("bob", "back-again!")
    assert again.get(f"/api/experiments/{experiment_id}").status_code == 200  # runs stayed
    only_admin = run_cli("user", "lock", "alice", db=server.database)
    assert "Note: no admin can log in now" in only_admin.stdout
    nobody = run_cli(
        "user", "password", "nobody", "--password-stdin", db=server.database, stdin="x" * 9
    )
    assert (
        nobody.returncode == 1
        and nobody.stderr.count("\n") == 1
        and "no user named" in nobody.stderr
    )


def test_a_credential_asked_for_by_a_session_ended_meanwhile_is_refused(
    ingest_db: tuple[Any, str],
) -> None:
    """A lock committed between a request's login check and its job left a locked-out user
    a working token (a review raced eight threads against it): the job checks again."""
    from backend.services import device_login, ssh_keys
    from backend.services.accounts import profile_token_job
    from backend.services.errors import NotAuthenticated

    conn, _ = ingest_db
    user_id = conn.execute("SELECT id FROM users").fetchone()[0]
    gone = Principal(user_id=user_id, username="ada", is_admin=True, session_id=424242)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x"
    for job in (
        profile_token_job(user_id, gone.session_id),
        ssh_keys.add_key_job(user_id, key, session_id=gone.session_id),
        device_login.approve_job(gone, "BCDF-GHJK", time.time()),
    ):
        (outcome,), _ = run_in_transaction(conn, [job])
        assert isinstance(outcome, NotAuthenticated), outcome
    assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 1  # ada's own only
    (made,), _ = run_in_transaction(conn, [profile_token_job(user_id)])  # an admin's command
    assert made.token.startswith("lst_")


def test_requests_let_in_before_a_lock_change_nothing_after_it(
    ingest_db: tuple[Any, str],
) -> None:
    """A login whose password was checked before a lock (argon2 takes a while), a password
    change, a watch or an SSH session begun then: each checks again in its transaction
    (a review raced them: a locked user kept a session, and a password change undid the
    lock for good)."""
    from backend.services import accounts, watches
    from backend.services.errors import NotAuthenticated
    from backend.ssh.server import _ssh_session_job
    from shared.watches import WatchCreate

    conn, _ = ingest_db
    user_id, checked = conn.execute("SELECT id, password_hash FROM users").fetchone()
    (token,), _ = run_in_transaction(conn, [accounts.start_session_job(user_id, checked=checked)])
    assert token.startswith(accounts.SESSION_PREFIX)  # before the lock: a session
    session_id = conn.execute("SELECT id FROM sessions").fetchone()[0]
    me = Principal(user_id=user_id, username="ada", is_admin=True, session_id=session_id)
    run_in_transaction(conn, [accounts.reset_password_job(user_id, None)])  # the lock
    watch = WatchCreate(kind="status", project_id=1)
    for job in (
        accounts.start_session_job(user_id, checked=checked),
        accounts.change_password_job(me, accounts.hash_password("a-new-password"), False),
        watches.create_job(me, watch, time.time),
        _ssh_session_job(user_id, "127.0.0.1:22"),
    ):
        (outcome,), _ = run_in_transaction(conn, [job])
        assert isinstance(outcome, NotAuthenticated), outcome
    assert conn.execute("SELECT password_hash FROM users").fetchone()[0] == "!locked"
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


def test_migration_24_starts_past_every_id_given_out_before_it(server: Server) -> None:
    """It started from the newest remaining row: a deleted newest watch (SQLite keeps its
    id in sqlite_sequence) or token (PostgreSQL's sequence) had its id given out again."""
    from backend.db import pg_schema
    from backend.db.connection import is_postgres
    from backend.db.migrations import MIGRATIONS

    alice = server.add_user("alice")
    with closing(connect_sync(server.database)) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0]
        # Rows as the code before version 24 made them: ids from the engine itself (on
        # PostgreSQL its sequences past the rows this version made, as they were then).
        if is_postgres(conn):
            for table in ("tokens", "watches"):
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}))"
                )
        for i in range(3):
            conn.execute(
                "INSERT INTO tokens (user_id, kind, name, token_hash, prefix, scopes,"
                " created_at) VALUES (?, 'client', ?, ?, 'lst_x', '', 0)",
                (user_id, f"old{i}", f"hash{i}".encode()),
            )
            conn.execute(
                "INSERT INTO watches (user_id, kind, statuses, created_at)"
                " VALUES (?, 'status', 'failed', 0)",
                (user_id,),
            )
        newest = {
            table: conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]
            for table in ("tokens", "watches")
        }
        for table, row_id in newest.items():
            conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
        conn.execute("DELETE FROM id_high_water WHERE name IN ('tokens', 'ssh_keys', 'watches')")
        known = pg_schema.MIGRATIONS if is_postgres(conn) else MIGRATIONS
        (step,) = (s for v, s in known if v == 24)
        assert callable(step)
        step(conn)
        commit = getattr(conn, "commit", None)
        if commit is not None:
            commit()
    made = alice.client.post("/api/user/token").json()["info"]["id"]
    project = alice.client.post("/api/projects", json={"name": "w", "repo_url": "git@h:a/w"})
    watch = alice.client.post(
        "/api/watches", json={"kind": "status", "project_id": project.json()["id"]}
    )
    assert watch.status_code == 201, watch.text
    if server.database_url:
        assert made > newest["tokens"]  # PostgreSQL's sequence had given it out
    assert watch.json()["id"] > newest["watches"]  # SQLite's sequence (AUTOINCREMENT) too

"""Sessions, the profile token lifecycle and password changes."""

import time
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from backend.services import accounts
from backend.settings import Settings, password_memory_kib
from tests.conftest import PASSWORD, Server, User, fixture_bodies, run_cli

BODY = fixture_bodies("dvclive_basic")[0]


def test_login_refuses_wrong_password_and_unknown_user(server: Server, alice: User) -> None:
    for username, password in (("alice", "nope-nope-nope"), ("mallory", PASSWORD)):
        resp = httpx.post(
            f"{server.url}/api/auth/login", json={"username": username, "password": password}
        )
        assert resp.status_code == 401 and resp.json()["detail"] == "Wrong username or password."


def test_profile_token_metadata_last_used_and_prefix(server: Server, alice: User) -> None:
    info = alice.client.get("/api/user").json()
    assert info["username"] == "alice" and info["is_admin"] is True
    assert info["profile_token"]["prefix"] == alice.token[:8]
    assert info["profile_token"]["last_used_at"] is None
    assert alice.token not in str(info)
    alice.live(BODY)
    info = alice.client.get("/api/user").json()
    assert info["profile_token"]["last_used_at"] is not None


def test_regenerating_a_token_keeps_the_session(server: Server, alice: User) -> None:
    new = alice.client.post("/api/user/token").json()
    assert new["token"].startswith("lst_") and len(new["token"]) >= 40
    assert alice.client.get("/api/user").json()["profile_token"]["prefix"] == new["token"][:8]
    assert alice.client.delete("/api/user/token").status_code == 204
    assert alice.client.get("/api/user").json()["profile_token"] is None
    again = alice.client.delete("/api/user/token")
    assert again.status_code == 404 and "no profile token" in again.json()["detail"]


def test_password_change_ends_other_sessions_and_can_reset_tokens(
    server: Server, alice: User
) -> None:
    other = server.login("alice")
    wrong = alice.client.post(
        "/api/user/password",
        json={"current_password": "bad-bad-bad", "new_password": "n3w-password!"},
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.json()["detail"]
    resp = alice.change_password(PASSWORD, "n3w-password!", reset_tokens=True)
    assert resp.status_code == 204
    assert alice.client.get("/api/user").status_code == 200  # this session lives on
    assert other.get("/api/user").status_code == 401
    assert alice.live(BODY).status_code == 401  # every token is gone
    server.login("alice", "n3w-password!")


def test_logout_ends_the_session(server: Server, alice: User) -> None:
    assert alice.client.post("/api/auth/logout").status_code == 204
    assert alice.client.get("/api/user").status_code == 401


def test_projects_can_be_created_and_deleted(server: Server, alice: User) -> None:
    made = alice.client.post(
        "/api/projects", json={"name": "vision", "repo_url": "git@github.com:Acme/Vision.git"}
    )
    assert made.status_code == 201
    project_id = made.json()["id"]
    alice.live({**BODY, "repo_url": "https://github.com/acme/vision"})
    listed = alice.client.get("/api/projects").json()
    assert [(p["name"], p["experiments"]) for p in listed] == [("vision", 1)]
    assert alice.client.delete(f"/api/projects/{project_id}").status_code == 204
    assert alice.client.get(f"/api/projects/{project_id}/experiments").status_code == 404


def test_openapi_health_and_wrong_method(server: Server) -> None:
    schema = httpx.get(f"{server.url}/schema/openapi.json").json()
    assert "/api/projects/{project_id}/experiments" in schema["paths"]
    # The live endpoint too (a plain ASGI handler, documented from its msgspec structs).
    live = schema["paths"]["/api/live"]["post"]
    kinds = live["requestBody"]["content"]["application/json"]["schema"]["discriminator"]
    assert set(kinds["mapping"]) == {"start", "data", "done"}
    assert "step" in schema["components"]["schemas"]["DataEvent"]["required"]
    assert {"200", "400", "401", "403", "413"} <= set(live["responses"])
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert set(schema["paths"]["/api/live"]["get"]["responses"]) == {"200", "401", "403"}
    wrong = httpx.put(f"{server.url}/api/live")
    assert wrong.status_code == 405 and "POST" in wrong.json()["detail"]
    missing = httpx.get(f"{server.url}/api/nothing")
    assert missing.status_code == 404 and "/schema" in missing.json()["detail"]


def test_sessions_expire_after_the_configured_days(make_server) -> None:
    server = make_server(LIVESTUDIO_SESSION_DAYS="0.00002")  # about two seconds
    alice = server.add_user("alice")
    import time

    time.sleep(2.2)
    expired = alice.client.get("/api/user")
    assert expired.status_code == 401 and "log in again" in expired.json()["detail"]
    assert alice.live(BODY).status_code == 200  # access tokens do not expire


def test_a_token_replaced_from_the_cli_is_refused_by_the_running_server(
    server: Server, alice: User
) -> None:
    body = fixture_bodies("dvclive_basic")[1]
    assert alice.live(body).status_code == 200  # the server now remembers this token
    replaced = run_cli("token", "create", "alice", db=server.database)
    assert replaced.returncode == 0, replaced.stderr  # not locked out by the writer
    assert alice.live(body).status_code == 401
    new = User("alice", replaced.stdout.strip(), alice.client)
    assert new.live(body).status_code == 200


def test_password_hashing_cost_is_argon2id_and_bounded() -> None:
    assert password_memory_kib({}) == 65536  # the default a server runs with
    assert password_memory_kib({"LIVESTUDIO_PASSWORD_MEMORY_KIB": "2048"}) == 2048
    for bad, says in (("512", "below 1024"), ("lots", "whole number")):
        with pytest.raises(ValueError, match=says):
            password_memory_kib({"LIVESTUDIO_PASSWORD_MEMORY_KIB": bad})
    with pytest.raises(ValueError, match="below 1024"):
        Settings.from_env({"LIVESTUDIO_PASSWORD_MEMORY_KIB": "100"})
    # The suite's own cost (conftest), on the real KDF; a hash made at any cost verifies.
    made = accounts.hash_password(PASSWORD)
    assert made.startswith("$argon2id$") and "m=1024," in made
    stronger = "$argon2id$v=19$m=65536,t=3,p=4$"
    old = PasswordHasher().hash(PASSWORD)
    assert old.startswith(stronger) and accounts.password_matches(old, PASSWORD)
    assert not accounts.password_matches(old, "wrong-horse-battery")


def test_ssh_keys_from_before_proof_of_possession_keep_logging_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.db import migrations, repository
    from backend.db.connection import connect_sync

    db = tmp_path / "old.db"
    conn = connect_sync(db)
    older = tuple(m for m in migrations.MIGRATIONS if m[0] < 16)
    monkeypatch.setattr(migrations, "MIGRATIONS", older)
    migrations.migrate(conn)  # a database of the version before keys were proven
    conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES ('u', 'x', 0)")
    conn.execute(
        "INSERT INTO ssh_keys (user_id, fingerprint, public_key, comment, created_at)"
        " VALUES (1, 'SHA256:old', 'ssh-ed25519 AAAA', '', 5)"
    )
    monkeypatch.undo()
    migrations.migrate(conn)
    (key,) = repository.ssh_keys_sync(conn, 1)
    assert key.confirmed and repository.ssh_key_claims(conn, "SHA256:old") == [(1, True)]


def test_an_admin_adding_a_key_again_does_not_use_it_and_a_private_key_is_refused(
    server: Server, tmp_path
) -> None:
    import subprocess

    from tests.conftest import run_cli

    server.add_user("alice")
    key = tmp_path / "alice_id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    for _ in range(2):
        added = run_cli("user", "add-key", "alice", f"{key}.pub", db=server.database)
        assert added.returncode == 0, added.stderr
    assert "used never" in run_cli("user", "keys", "alice", db=server.database).stdout
    private = run_cli("user", "add-key", "alice", str(key), db=server.database)
    assert private.returncode != 0 and "That is a private key" in private.stderr
    # One line: no library's warnings before it (cryptography's about DSA, say).
    assert len(private.stderr.strip().splitlines()) == 1, private.stderr
    wrong = run_cli("user", "remove-key", "alice", "SHA256:nope", db=server.database)
    assert "alice has no SSH key with the fingerprint SHA256:nope" in wrong.stderr


@pytest.mark.parametrize("reset_tokens", [True, False])
def test_resetting_tokens_withdraws_device_logins_approved_but_not_collected(
    server: Server, alice: User, reset_tokens: bool
) -> None:
    # A stolen session approves a device login; the owner changes the password and asks
    # for every token to go: the token waiting for that login must go with them.
    started = httpx.post(f"{server.url}/api/device-login", json={"client_name": "DVC"}).json()
    thief = server.login("alice")
    approved = thief.post("/api/device-login/approve", json={"user_code": started["user_code"]})
    assert approved.status_code == 200, approved.text
    changed = alice.change_password(PASSWORD, "n3w-password!", reset_tokens=reset_tokens)
    assert changed.status_code == 204
    collected = httpx.post(f"{server.url}/api/token", json={"code": started["device_code"]})
    if reset_tokens:
        assert collected.status_code == 400
        assert collected.json()["detail"] in {"invalid_device_code", "expired_token"}
    else:  # tokens stay, and so does the one approved for this login
        assert collected.status_code == 200 and collected.json()["access_token"].startswith("lst_")


def test_a_server_starting_again_ends_only_the_ssh_logins_it_left(
    server: Server, alice: User
) -> None:
    # Two servers on one database (PostgreSQL, several machines): one restarting ended the
    # other's SSH TUIs' logins too, which then asked their users to log in again.
    from contextlib import closing

    from backend.db import repository
    from backend.db.connection import connect_sync

    with closing(connect_sync(server.database)) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0]
        mine = repository.insert_session(conn, user_id, b"m" * 32)
        theirs = repository.insert_session(conn, user_id, b"t" * 32)
        repository.mark_ssh_session(conn, mine, "box-a:2222")
        repository.mark_ssh_session(conn, theirs, "box-b:2222")
        assert repository.end_ssh_sessions(conn, "box-a:2222") == 1
        left = {row[0] for row in conn.execute("SELECT id FROM sessions")}
        assert theirs in left and mine not in left
        # A server that never came back (another port, another host name) stops marking
        # its logins alive: they end once nobody has for a while, wherever they were made.
        gone = repository.insert_session(conn, user_id, b"g" * 32)
        repository.mark_ssh_session(conn, gone, "old-box:2222")
        now = time.time()
        repository.touch_ssh_sessions(conn, [theirs], now)
        conn.execute("UPDATE sessions SET last_used_at = ? WHERE id = ?", (now - 600, gone))
        assert repository.end_stale_ssh_sessions(conn, now - 180) == 1
        left = {row[0] for row in conn.execute("SELECT id FROM sessions")}
    assert theirs in left and gone not in left


def test_a_device_logins_names_are_one_line_of_plain_text(server: Server, alice: User) -> None:
    """Both names are shown to whoever approves: line breaks would write lines of their
    own into the approval dialog ("Approve: this is safe")."""
    forged = "laptop\n\nApprove: this is safe\u2028\x1b[31m" + "\u3164" * 30 + "\u200b!"
    started = httpx.post(
        f"{server.url}/api/device-login",
        json={"client_name": forged, "token_name": " a\tb\r\nc " + "x" * 100},
    ).json()
    found = alice.client.post("/api/device-login/lookup", json={"user_code": started["user_code"]})
    assert found.status_code == 200, found.text
    assert found.json()["client_name"] == "laptop Approve: this is safe [31m!"  # no fillers
    assert found.json()["token_name"] == ("a b c " + "x" * 100)[:64]

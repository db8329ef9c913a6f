"""``livestudio projects``, ``members`` and ``invitations`` from a shell, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSWORD, Server, User, fixture_bodies
from tui.settings import Session, TuiSettings

BODY = fixture_bodies("dvclive_basic")[1]


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )


def logged_in(tmp_path: Path, server: Server, user: User) -> dict[str, str]:
    """The environment of a shell where ``user`` ran ``livestudio login``."""
    config = tmp_path / f"config-{user.name}"
    settings = TuiSettings(session_file=config / "session.json")
    settings.save_session(Session(server.url, user.name, user.client.headers["Authorization"][7:]))
    return {**os.environ, "LIVESTUDIO_CONFIG_DIR": str(config), "LIVESTUDIO_SERVER": server.url}


def test_projects_are_listed_with_ids_and_members_takes_a_name_or_an_id(
    tmp_path: Path, server: Server, alice: User
) -> None:
    bob = server.add_user("bob")
    env = logged_in(tmp_path, server, alice)
    empty = cli(env, "projects")
    assert empty.returncode == 0 and "No projects yet" in empty.stdout
    run = alice.live(BODY).json()["experiment_id"]
    (project,) = alice.client.get("/api/projects").json()
    listed = cli(env, "projects")
    assert listed.returncode == 0, listed.stderr
    assert f"{project['id']}  {project['name']}  {project['repo_url']}" in listed.stdout
    assert "owner alice  1 experiment, 1 running" in listed.stdout

    invited = cli(env, "members", project["name"], "invite", "bob")  # by name
    assert invited.returncode == 0, invited.stderr
    assert invited.stdout.startswith("Invited bob;")
    again = cli(env, "members", project["name"], "invite", "bob")
    assert again.stdout.startswith("bob was invited already: invited again")
    bob_env = logged_in(tmp_path, server, bob)
    assert cli(bob_env, "invitations", "accept", str(project["id"])).returncode == 0
    twice_accepted = cli(bob_env, "invitations", "accept", str(project["id"]))
    assert twice_accepted.returncode == 1
    assert f"You are a member of project {project['id']} already." in twice_accepted.stderr
    shown = cli(env, "members", str(project["id"]))  # by id
    assert "members: alice, bob" in shown.stdout
    assert [
        r["id"] for r in bob.client.get(f"/api/projects/{project['id']}/experiments").json()
    ] == [run]

    # A name two projects share, or none has, is refused in one line that says what to do.
    alice.client.post(
        "/api/projects", json={"name": project["name"], "repo_url": "https://x.org/a/b"}
    )
    twice = cli(env, "members", project["name"])
    assert twice.returncode == 1 and "give the id instead" in twice.stderr
    assert f"are both named {project['name']!r}" in twice.stderr
    assert "Traceback" not in twice.stderr and len(twice.stderr.strip().splitlines()) == 1
    nowhere = cli(env, "members", "nope")
    assert nowhere.returncode == 1 and "`livestudio projects` lists them" in nowhere.stderr
    # A name that is another project's id is ambiguous too; as a name alone it is a name.
    numeric = alice.client.post(
        "/api/projects", json={"name": str(project["id"]), "repo_url": "https://x.org/c/d"}
    ).json()
    clash = cli(env, "members", str(project["id"]))
    assert clash.returncode == 1 and f"({numeric['id']}); give that one's id" in clash.stderr
    assert "members: alice" in cli(env, "members", str(numeric["id"])).stdout
    # Bob is in one of them only: for him the name is not ambiguous.
    assert "members: alice, bob" in cli(bob_env, "members", project["name"]).stdout
    # Withdrawing an invitation says so (they never were a member); removing a member too.
    assert cli(env, "members", str(numeric["id"]), "invite", "bob").returncode == 0
    withdrawn = cli(env, "members", str(numeric["id"]), "remove", "bob")
    assert withdrawn.stdout == f"Withdrew the invitation of bob to project {numeric['id']}.\n"
    assert cli(env, "members", str(numeric["id"]), "invite", "bob").returncode == 0
    assert cli(bob_env, "invitations", "accept", str(numeric["id"])).returncode == 0
    removed = cli(env, "members", str(numeric["id"]), "remove", "bob")
    assert removed.stdout == f"bob is no longer a member of project {numeric['id']}.\n"
    # Names and URLs of different lengths, in aligned columns.
    lines = cli(env, "projects").stdout.splitlines()
    assert len(lines) == 3 and len({line.index("owner alice") for line in lines}) == 1
    assert (
        len({line.index(" https://") if "https" in line else line.index(" git@") for line in lines})
        == 1
    )


def test_a_server_url_with_a_path_or_no_login_is_told_how_to_mend(
    tmp_path: Path, server: Server, alice: User
) -> None:
    env = {**os.environ, "LIVESTUDIO_CONFIG_DIR": str(tmp_path / "cfg")}
    stray = cli(
        env,
        "login",
        "--server",
        f"{server.url}/api",
        "-u",
        "alice",
        "--password-stdin",
        stdin="x\n",
    )
    assert stray.returncode == 1 and f"give --server {server.url}." in stray.stderr
    not_yet = cli(env, "projects", "--server", server.url)
    assert f"`livestudio login --server {server.url}`" in not_yet.stderr
    # Nothing on stdin: said so (it was "Wrong username or password").
    for empty in ("", "\n"):
        blank = cli(
            env, "login", "--server", server.url, "-u", "alice", "--password-stdin", stdin=empty
        )
        assert blank.returncode == 1 and "No password on stdin" in blank.stderr, blank.stderr
        assert blank.stderr.count("\n") == 1


def test_a_config_folder_that_cannot_be_written_is_said_before_logging_in(
    tmp_path: Path, server: Server, alice: User
) -> None:
    """It ended in a NotADirectoryError traceback, after the server had made the login."""
    (tmp_path / "a-file").write_text("")
    env = {**os.environ, "LIVESTUDIO_CONFIG_DIR": str(tmp_path / "a-file" / "cfg")}
    args = ("login", "--server", server.url, "-u", "alice", "--password-stdin")
    done = cli(env, *args, stdin=f"{PASSWORD}\n")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "Cannot keep the login in" in done.stderr and "LIVESTUDIO_CONFIG_DIR" in done.stderr


def test_declining_from_a_shell_names_the_project(
    tmp_path: Path, server: Server, alice: User
) -> None:
    bob = server.add_user("bob")
    alice.live(BODY)
    (project,) = alice.client.get("/api/projects").json()
    invited = alice.client.post(f"/api/projects/{project['id']}/members", json={"username": "bob"})
    assert invited.status_code == 201
    bob_env = logged_in(tmp_path, server, bob)
    declined = cli(bob_env, "invitations", "decline", str(project["id"]))
    assert declined.returncode == 0, declined.stderr
    assert f"Declined the invitation to {project['name']!r}." in declined.stdout
    again = cli(bob_env, "invitations", "decline", str(project["id"]))
    assert again.returncode == 1 and "no invitation" in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    # By name too, as `members` takes one (it was "invalid int value").
    by_name = cli(bob_env, "invitations", "accept", project["name"])
    assert by_name.returncode == 1 and "No invitation to a project named" in by_name.stderr
    invited = alice.client.post(f"/api/projects/{project['id']}/members", json={"username": "bob"})
    assert invited.status_code == 201
    by_name = cli(bob_env, "invitations", "accept", project["name"])
    assert by_name.returncode == 0 and f"Joined {project['name']!r}" in by_name.stdout


def test_a_server_that_is_not_there_or_not_livestudio_is_said_in_plain_words(
    tmp_path: Path,
) -> None:
    import http.server
    import threading

    from tests.conftest import free_port

    env = {**os.environ, "LIVESTUDIO_CONFIG_DIR": str(tmp_path / "cfg")}

    def log_in(server: str) -> str:
        """``livestudio login`` at ``server``: what it says, refused in one line."""
        done = cli(env, "login", "--server", server, "-u", "a", "--password-stdin", stdin="pw\n")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        return done.stderr

    def log_in_at(handler: type[http.server.BaseHTTPRequestHandler]) -> str:
        other = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        try:
            return log_in(f"http://127.0.0.1:{other.server_port}")
        finally:
            other.shutdown()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a web page that answers anything with 200
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>welcome</html>")

        def log_message(self, *args: object) -> None:
            pass

    gone = log_in(f"http://127.0.0.1:{free_port()}")
    assert "nothing answers there" in gone and "Errno" not in gone
    assert "is that the livestudio server's URL?" in log_in_at(
        http.server.SimpleHTTPRequestHandler  # 501 to a POST
    )
    assert "without livestudio's JSON" in log_in_at(Page)
    # https:// to a plain-HTTP server: said so, not the TLS library's error text.
    other = http.server.HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        tls = log_in(f"https://127.0.0.1:{other.server_port}")
    finally:
        other.shutdown()
    assert "no HTTPS server answers there (is it http://?)" in tls and "_ssl.c" not in tls


def test_one_session_is_kept_per_server(tmp_path: Path, make_server) -> None:
    # Logging in to a second server kept only that one: the first asked to log in again.
    first, second = make_server(), make_server()
    for server in (first, second):
        server.add_user("alice")
    env = {**os.environ, "LIVESTUDIO_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop("LIVESTUDIO_SERVER", None)
    for server in (first, second):
        done = cli(
            env,
            "login",
            "--server",
            server.url,
            "-u",
            "alice",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert done.returncode == 0, done.stderr
    for server in (first, second):
        listed = cli({**env, "LIVESTUDIO_SERVER": server.url}, "projects")
        assert listed.returncode == 0, listed.stderr
    # Without a server named, the one logged in to last.
    assert TuiSettings(session_file=tmp_path / "cfg" / "session.json").load_session().server == (
        second.url
    )
    # An old one-session file still reads.
    old = tmp_path / "old" / "session.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"server": first.url, "username": "alice", "token": "lss_x"}))
    assert TuiSettings(session_file=old).load_session(first.url).username == "alice"

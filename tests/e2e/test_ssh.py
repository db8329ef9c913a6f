"""The TUI served over SSH, driven by the real OpenSSH client (and tmux for the screen)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import httpx
import pytest

from shared.watches import MIN_STALL_SECONDS
from tests.conftest import PASSWORD, Server, fixture_bodies, free_port, run_cli
from tests.e2e.test_real_clients import make_dvc_repo, train

BODIES = fixture_bodies("dvclive_basic")

pytestmark = pytest.mark.skipif(
    shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
    reason="the OpenSSH client (ssh, ssh-keygen) is not installed",
)


def keypair(folder: Path, name: str) -> Path:
    """A fresh ed25519 key; returns the private key's path (``.pub`` beside it)."""
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@laptop", "-f", str(key)],
        check=True,
    )
    return key


def ssh_args(key: Path, port: int, *options: str) -> list[str]:
    return [
        "ssh",
        "-i",
        str(key),
        "-p",
        str(port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        *options,
    ]


def ssh(
    key: Path, port: int, *command: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ssh_args(key, port, "-o", "BatchMode=yes", *options), "someone@127.0.0.1", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )


def first_login(key: Path, port: int, username: str, *passwords: str) -> str:
    """A key's first session in a terminal, as ``username``, typing each password at the
    prompt in turn; returns what the session printed (it ends once the key is confirmed,
    refused, or the passwords run out)."""

    async def session() -> str:
        async with asyncssh.connect(
            "127.0.0.1",
            port,
            username=username,
            client_keys=[str(key)],
            known_hosts=None,
            agent_path=None,
        ) as conn:
            process = await conn.create_process(term_type="xterm", encoding=None)
            shown = b""
            left = list(passwords)
            while True:
                chunk = await asyncio.wait_for(process.stdout.read(4096), 30)
                if not chunk:
                    break
                shown += chunk
                if b"Key confirmed" in shown:
                    break
                if shown.endswith(b": ") and b"Password for" in chunk:
                    if not left:  # nothing more to try: give up, as a person would
                        break
                    # CR LF, as some clients and pastes send: one line, one try.
                    process.stdin.write(left.pop(0).encode() + b"\r\n")
            process.close()
            return shown.decode()

    return asyncio.run(session())


def ssh_as(
    name: str, keys: list[Path], port: int, *command: str
) -> subprocess.CompletedProcess[str]:
    """``ssh NAME@host`` offering each key in turn, as a client with several keys does."""
    args = ssh_args(keys[0], port, "-o", "BatchMode=yes")
    args[1:3] = [arg for key in keys for arg in ("-i", str(key))]  # in place of the one -i
    return subprocess.run(
        [*args, f"{name}@127.0.0.1", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def ssh_server(make_server: Callable[..., Server]) -> tuple[Server, int]:
    port = free_port()
    return make_server(LIVESTUDIO_SSH_PORT=str(port)), port


def alice_with_a_key(server: Server, tmp_path: Path) -> tuple[Path, str]:
    """A user alice with an SSH key added by an admin: (its private key, fingerprint)."""
    server.add_user("alice")
    key = keypair(tmp_path, "alice")
    added = run_cli("user", "add-key", "alice", str(key) + ".pub", db=server.db)
    assert added.returncode == 0 and "alice@laptop" in added.stdout, added.stderr
    return key, added.stdout.split(" key ")[1].split(" ")[0]


def test_keys_are_the_login_and_the_host_key_can_be_checked(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    server, port = ssh_server
    key, fingerprint = alice_with_a_key(server, tmp_path)
    listed = run_cli("user", "keys", "alice", db=server.db)
    assert fingerprint in listed.stdout and "used never" in listed.stdout
    # The host key: generated at first start, private to the server, its fingerprint shown.
    host = run_cli("ssh-fingerprint", db=server.db).stdout.strip()
    assert host.startswith("SHA256:") and host in (server.log.read_text() if server.log else "")
    key_file = server.db.with_name("ssh_host_ed25519_key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Asked of the wrong database (no --db), it says so instead of making another key.
    elsewhere = tmp_path / "elsewhere" / "livestudio.db"
    wrong = run_cli("ssh-fingerprint", db=elsewhere)
    assert wrong.returncode != 0 and "pass the --db your server uses" in wrong.stderr
    assert not elsewhere.parent.exists() and "Traceback" not in wrong.stderr
    # A database no SSH server has used yet has no key: said so, none made.
    unused = tmp_path / "unused" / "unused.db"
    unused.parent.mkdir()
    unused.touch()  # (an empty SQLite database)
    assert run_cli("db", "migrate", db=unused).returncode == 0
    none = run_cli("ssh-fingerprint", db=unused)
    assert none.returncode != 0 and "There is no SSH host key" in none.stderr
    assert not unused.with_name("ssh_host_ed25519_key").exists()
    # Offering a public key without its private half is no use, and is not "used".
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    (stolen / "k.pub").write_text((tmp_path / "alice.pub").read_text())
    assert ssh(stolen / "k.pub", port, "ls").returncode == 255
    assert "used never" in run_cli("user", "keys", "alice", db=server.db).stdout
    assert ssh(key, port, "ls").returncode == 0
    assert "used 20" in run_cli("user", "keys", "alice", db=server.db).stdout
    # An open connection (a ControlMaster) is cut off as soon as its key is removed.
    socket = tmp_path / "master.sock"
    master = [*ssh_args(key, port, "-o", "BatchMode=yes"), "-S", str(socket)]
    subprocess.run([*master, "-f", "-N", "-M", "x@127.0.0.1"], check=True, timeout=30)
    assert subprocess.run([*master, "x@127.0.0.1", "ls"], capture_output=True).returncode == 0
    # Removed, the key no longer logs in; a key nobody registered never did.
    assert run_cli("user", "remove-key", "alice", fingerprint, db=server.db).returncode == 0
    over_master = subprocess.run([*master, "x@127.0.0.1", "ls"], capture_output=True, text=True)
    assert over_master.returncode != 0
    subprocess.run([*master, "-O", "exit", "x@127.0.0.1"], capture_output=True)
    refused = ssh(key, port, "ls")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    stranger = keypair(tmp_path, "stranger")
    assert ssh(stranger, port, "ls").returncode == 255


def test_ls_shows_each_user_their_own_and_nothing_else_is_allowed(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    server, port = ssh_server
    alice, bob = server.add_user("alice"), server.add_user("bob")
    keys = {}
    for user in (alice, bob):
        keys[user.name] = keypair(tmp_path, user.name)
        public = (keys[user.name].with_suffix(".pub")).read_text()
        added = user.client.post("/api/user/keys", json={"public_key": public})
        assert added.status_code == 201, added.text
        # Added by its user, a key logs in once its holder proved it theirs: until then
        # only as that user, and only to be proven.
        assert ssh(keys[user.name], port, "ls").returncode == 255
        refused = ssh_as(user.name, [keys[user.name]], port, "ls")
        assert refused.returncode == 1 and "log in once with `ssh -t`" in refused.stderr
        assert "Key confirmed" in first_login(keys[user.name], port, user.name, PASSWORD)
    assert alice.live(BODIES[1]).status_code == 200
    mine = json.loads(ssh(keys["alice"], port, "ls", "--json").stdout)
    assert [p["project"]["name"] for p in mine] == ["mnist"]
    assert [(r["name"], r["stalled"]) for r in mine[0]["running"]] == [(BODIES[1]["name"], False)]
    plain = ssh(keys["alice"], port, "ls").stdout
    assert "mnist" in plain and f"● running  {BODIES[1]['name']}" in plain
    # In a terminal (ssh -t), lines end in CR LF: bare LFs drew a staircase.
    framed = subprocess.run(
        [*ssh_args(keys["alice"], port, "-tt", "-o", "BatchMode=yes"), "x@127.0.0.1", "ls"],
        capture_output=True,
        timeout=60,
    ).stdout
    assert b"mnist" in framed and framed.count(b"\n") == framed.count(b"\r\n") >= 2
    # A run gone silent for many times its step interval reads as the TUI shows it.
    for step in (1, 2, 3):
        assert alice.live({**BODIES[1], "name": "quiet", "step": step}).status_code == 200
    assert "● running  quiet" in ssh(keys["alice"], port, "ls").stdout
    time.sleep(MIN_STALL_SECONDS)
    deadline = time.monotonic() + 20  # a loaded machine posts slowly: a longer interval
    while "◌ stalled  quiet" not in (listed := ssh(keys["alice"], port, "ls").stdout):
        assert time.monotonic() < deadline, listed
        time.sleep(0.5)
    listed_json = json.loads(ssh(keys["alice"], port, "ls", "--json").stdout)
    assert {r["name"]: r["stalled"] for r in listed_json[0]["running"]}["quiet"] is True
    assert json.loads(ssh(keys["bob"], port, "ls", "--json").stdout) == []
    # No shell, no other command, no password, no forwarding.
    shell = ssh(keys["alice"], port, "bash")
    assert shell.returncode == 1 and "there is no shell" in shell.stderr
    quote = ssh(keys["alice"], port, "ls '")
    assert quote.returncode == 1 and "there is no shell" in quote.stderr
    no_pty = ssh(keys["alice"], port)
    assert no_pty.returncode == 1 and "ssh -t" in no_pty.stderr
    project_no_pty = ssh(keys["alice"], port, "mnist")  # it told only the usage
    assert "the terminal UI needs `ssh -t`" in project_no_pty.stderr
    password = ssh(
        keys["alice"],
        port,
        "ls",
        options=("-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password"),
    )
    assert password.returncode == 255 and "Permission denied" in password.stderr
    forward = ssh(keys["alice"], port, options=("-W", f"127.0.0.1:{server.port}"))
    assert forward.returncode != 0
    # Keys through the API need a login session, and are listed and removed there too.
    listed = alice.client.get("/api/user/keys").json()
    assert [k["comment"] for k in listed] == ["alice@laptop"]
    by_token = httpx.get(
        f"{server.url}/api/user/keys", headers={"Authorization": f"Bearer {alice.token}"}
    )
    assert by_token.status_code == 403
    assert alice.client.delete(f"/api/user/keys/{listed[0]['id']}").status_code == 204
    assert ssh(keys["alice"], port, "ls").returncode == 255


def test_a_password_change_that_resets_tokens_removes_ssh_keys_too(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    """A key added with a stolen session must not let its holder back in afterwards."""
    server, port = ssh_server
    bob = server.add_user("bob")
    thief = server.login("bob")  # the stolen session
    evil = keypair(tmp_path, "evil")
    added = thief.post("/api/user/keys", json={"public_key": evil.with_suffix(".pub").read_text()})
    assert added.status_code == 201
    # The thief holds the key but not the password: the key never logs in.
    assert ssh_as("bob", [evil], port, "ls").returncode == 1
    shown = first_login(evil, port, "bob", "guessed-password", "guessed-again")
    assert shown.count("Wrong password.") == 2 and "Too many" not in shown
    shown = first_login(evil, port, "bob", "guessed-password", "guessed-again", "and-again")
    assert shown.count("Wrong password.") == 3 and "Too many wrong passwords" in shown
    assert "Key confirmed" not in shown and ssh_as("bob", [evil], port, "ls").returncode == 1
    # Had they the password too, a reset of tokens would take the key away.
    assert "Key confirmed" in first_login(evil, port, "bob", PASSWORD)
    plain = bob.change_password(PASSWORD, "second-password", reset_tokens=False)
    assert plain.status_code == 204 and ssh(evil, port, "ls").returncode == 0  # keys kept
    reset = bob.change_password("second-password", "third-password", reset_tokens=True)
    assert reset.status_code == 204
    assert thief.get("/api/user").status_code == 401
    assert bob.client.get("/api/user/keys").json() == []
    assert ssh(evil, port, "ls").returncode == 255


def test_a_public_key_pasted_into_another_account_logs_nobody_in_as_that_account(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    server, port = ssh_server
    alice, mallory = server.add_user("alice"), server.add_user("mallory")
    key, other = keypair(tmp_path, "alice"), keypair(tmp_path, "alice-2")
    public = key.with_suffix(".pub").read_text()
    run_cli("user", "add-key", "alice", str(other) + ".pub", db=server.db)  # proven
    # Mallory pastes Alice's public keys (public, after all) into her own account...
    for pasted in (public, other.with_suffix(".pub").read_text()):
        added = mallory.client.post("/api/user/keys", json={"public_key": pasted})
        assert added.status_code in (201, 409)
    listed = mallory.client.get("/api/user/keys").json()
    assert [(k["confirmed"], k["last_used_at"]) for k in listed] == [(False, None)]
    # ...which opens no account: unproven, a key logs in only as an account that claims it
    # and that the client names; Alice's client, offering that key first, goes on to her
    # proven one.
    assert ssh_as("alice", [key], port, "ls").returncode == 255
    assert ssh_as("alice", [key, other], port, "ls").returncode == 0
    # Alice claims the key too, and however often Mallory removes and adds hers...
    assert alice.client.post("/api/user/keys", json={"public_key": public}).status_code == 201
    for _ in range(3):
        mine = mallory.client.get("/api/user/keys").json()
        assert mallory.client.delete(f"/api/user/keys/{mine[0]['id']}").status_code == 204
        assert mallory.client.post("/api/user/keys", json={"public_key": public}).status_code == 201
    # ...Alice, its holder, proves it hers; Mallory's claim goes.
    assert "Key confirmed" in first_login(key, port, "alice", PASSWORD)
    assert mallory.client.get("/api/user/keys").json() == []
    assert [k["confirmed"] for k in alice.client.get("/api/user/keys").json()] == [True, True]
    assert json.loads(ssh(key, port, "ls", "--json").stdout) == []
    # A proven key is nobody else's to take.
    taken = mallory.client.post("/api/user/keys", json={"public_key": public})
    assert taken.status_code == 409 and "proven by logging in with it" in taken.json()["detail"]
    # An admin may vouch for a key someone claims: it is proven at once.
    hers = keypair(tmp_path, "mallory")
    claimed = mallory.client.post(
        "/api/user/keys", json={"public_key": hers.with_suffix(".pub").read_text()}
    )
    assert claimed.status_code == 201 and not claimed.json()["confirmed"]
    vouched = run_cli("user", "add-key", "mallory", str(hers) + ".pub", db=server.db)
    assert vouched.returncode == 0, vouched.stderr
    assert [k["confirmed"] for k in mallory.client.get("/api/user/keys").json()] == [True]


def _screen(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def _wait_for(session: str, check: Callable[[str], bool], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = _screen(session)
        if check(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"screen never matched:\n{text}")
        time.sleep(0.2)


def _tmux(session: str, command: str) -> None:
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
    )


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_tui_over_ssh_follows_a_real_dvclive_run_and_the_window(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    server, port = ssh_server
    alice = server.add_user("alice")
    server.add_user("bob")
    keys = {}
    for user in ("alice", "bob"):
        keys[user] = keypair(tmp_path, user)
        run_cli("user", "add-key", user, str(keys[user]) + ".pub", db=server.db)
    repo = make_dvc_repo(tmp_path / "mnist", "git@github.com:acme/mnist.git")

    train(repo, server, alice)  # the first run makes the project
    project = alice.client.get("/api/projects").json()[0]["name"]
    first, theirs = f"ls-a-{port}", f"ls-b-{port}"
    _tmux(first, " ".join([*ssh_args(keys["alice"], port, "-t"), "x@127.0.0.1", project]))
    _tmux(theirs, " ".join([*ssh_args(keys["bob"], port, "-t"), "x@127.0.0.1"]))
    try:
        screen = _wait_for(first, lambda s: project in s and "completed" in s)
        assert len(screen.splitlines()) == 24 and max(len(x) for x in screen.splitlines()) <= 80
        # A second real DVCLive run appears in the open table and its values move to the end.
        train(repo, server, alice)
        _wait_for(first, lambda s: s.count("completed") >= 2 or s.count("✓") >= 2)
        # Bob's session shows his projects only: none of Alice's.
        others = _wait_for(theirs, lambda s: "repository" in s or "No projects" in s)
        assert project not in others
        # The window grows: the table is laid out again with more columns.
        resize = ["tmux", "resize-window", "-t", first, "-x", "120", "-y", "40"]
        subprocess.run(resize, check=True)
        wide = _wait_for(first, lambda s: "model/layers" in s)
        assert len(wide.splitlines()) == 40
        subprocess.run(["tmux", "send-keys", "-t", first, "q"], check=True)
        _wait_for(first, lambda s: "repository" in s)
        subprocess.run(["tmux", "send-keys", "-t", first, "q"], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", first], capture_output=True)
            if alive.returncode != 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the SSH session did not end when the TUI quit")
    finally:
        for session in (first, theirs):
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    time.sleep(1)
    server.stop()
    with sqlite3.connect(server.db) as conn:  # no SSH login outlives its session
        assert conn.execute("SELECT COUNT(*) FROM ssh_sessions").fetchone()[0] == 0
    folders = server.db.parent / "ssh-sessions"  # the sessions' private folders are gone
    assert not folders.exists() or not any(folders.iterdir())
    leftovers = subprocess.run(
        ["pgrep", "-f", f"server http://127.0.0.1:{server.port}"], capture_output=True
    )
    assert leftovers.returncode == 1, "a session's TUI process outlived it"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_session_cut_off_by_removing_its_key_hands_the_terminal_back(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    server, port = ssh_server
    key, fingerprint = alice_with_a_key(server, tmp_path)
    session = f"cut-{port}"
    _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
    try:
        subprocess.run(["tmux", "set", "-t", session, "remain-on-exit", "on"], check=True)
        _wait_for(session, lambda s: "projects" in s)  # the TUI is up: alternate screen, mouse

        def flags() -> str:
            shown = "#{pane_dead} #{alternate_on} #{mouse_any_flag}"
            return subprocess.run(
                ["tmux", "display", "-p", "-t", session, shown], capture_output=True, text=True
            ).stdout.split()

        assert flags()[1] == "1" and flags()[2] == "1"
        assert run_cli("user", "remove-key", "alice", fingerprint, db=server.db).returncode == 0
        deadline = time.monotonic() + 20
        while flags()[0] != "1" and time.monotonic() < deadline:
            time.sleep(0.2)
        # Ended, and the terminal as it was: main screen, no mouse reporting (tmux says
        # nothing of a dead pane's cursor).
        assert flags() == ["1", "0", "0"]
        assert "the SSH key of this session was removed" in _screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_server_stops_while_an_ssh_session_is_open(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    # Ending the session at shutdown commits a write after the channels stopped: its
    # publish raised inside the writer, which died, and the stop waited on it for good.
    server, port = ssh_server
    key, _ = alice_with_a_key(server, tmp_path)
    session = f"stop-{port}"
    _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
    try:
        _wait_for(session, lambda s: "projects" in s)
        proc = server.proc
        assert proc is not None
        proc.send_signal(signal.SIGINT)
        proc.wait(20)  # raises TimeoutExpired when the stop hangs
        server.proc = None
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_connections_holding_nothing_are_closed_and_bounded_per_address(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Logged in with no session open, a connection stayed for good (a thousand held the
    server's file descriptors); any subsystem name opened the TUI."""
    port = free_port()
    server = make_server(
        LIVESTUDIO_SSH_PORT=str(port),
        LIVESTUDIO_SSH_IDLE_TIMEOUT="1",
        LIVESTUDIO_CONNECTIONS_PER_ADDRESS="4",
    )
    key, _ = alice_with_a_key(server, tmp_path)

    async def connect() -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            "127.0.0.1", port, username="alice", client_keys=[str(key)], known_hosts=None
        )

    async def scenario() -> None:
        quiet = await connect()
        subsystem = await quiet.create_process(subsystem="anything-at-all", term_type="xterm")
        told = await asyncio.wait_for(subsystem.stderr.read(), 20)
        assert "no subsystem here" in told and (await subsystem.wait()).exit_status == 1
        # Nothing open on it now: closed within a check (every 5 s) of the 1 s allowed.
        await asyncio.wait_for(quiet.wait_closed(), 20)
        held = [await connect() for _ in range(4)]
        try:
            with pytest.raises((asyncssh.Error, OSError)):
                await connect()  # the 5th from this address
            # OpenSSH says why (closed before the banners, it spoke of invalid characters).
            args = ssh_args(key, port, "-o", "BatchMode=yes")
            args[args.index("LogLevel=ERROR")] = "LogLevel=INFO"  # (ssh's default)
            refused = await asyncio.to_thread(
                subprocess.run, [*args, "x@127.0.0.1", "ls"], capture_output=True, text=True
            )
            assert refused.returncode == 255
            assert "too many connections from your address" in refused.stderr, refused.stderr
        finally:
            for conn in held:
                conn.close()
        await asyncio.sleep(0.5)
        assert (await asyncio.to_thread(ssh, key, port, "ls")).returncode == 0  # freed

    asyncio.run(scenario())


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_an_ssh_tui_whose_login_ends_closes_with_no_login_form(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    """Its login form's server field made the server's host post to any address typed."""
    server, port = ssh_server
    key, _ = alice_with_a_key(server, tmp_path)
    alice = server.login("alice")
    session = f"ended-{port}"
    _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
    try:
        subprocess.run(["tmux", "set", "-t", session, "remain-on-exit", "on"], check=True)
        _wait_for(session, lambda s: "projects" in s)
        # A password change ends the user's other logins, the SSH TUI's included.
        changed = alice.post(
            "/api/user/password",
            json={"current_password": PASSWORD, "new_password": "n3w-password!"},
        )
        assert changed.status_code == 204, changed.text
        subprocess.run(["tmux", "send-keys", "-t", session, "r"], check=True)
        shown = _wait_for(session, lambda s: "connect again with ssh" in s)
        assert "http://host:8000" not in shown  # (the login form's server field)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_tui_over_ssh_opens_on_a_server_given_a_relative_database_path(
    tmp_path: Path,
) -> None:
    """`serve --db data/live.db`: the TUIs run in a folder beside the database, where the
    relative path named nothing, and every session ended at once as "logged out"."""
    import os

    port = free_port()
    relative = Path(os.path.relpath(tmp_path / "live.db"))
    assert not relative.is_absolute()
    server = Server(db=relative, port=free_port(), env={"LIVESTUDIO_SSH_PORT": str(port)})
    server.start()
    session = f"relative-{port}"
    try:
        key, _ = alice_with_a_key(server, tmp_path)
        _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
        subprocess.run(["tmux", "set", "-t", session, "remain-on-exit", "on"], check=True)
        screen = _wait_for(session, lambda s: "connected" in s or "connect again" in s)
        assert "connect again" not in screen and "projects" in screen, screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        server.stop()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_each_tui_over_ssh_brings_its_own_share_of_api_connections(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Every SSH user's TUI reaches the API from the server's own address: counted against
    that address's share alone, ~64 TUIs open at once left every further one unable to
    reach the API (and the server host's own CLI and DVCLive runs with them)."""
    from tests.backend.sse import Listener

    port = free_port()
    server = make_server(LIVESTUDIO_SSH_PORT=str(port), LIVESTUDIO_CONNECTIONS_PER_ADDRESS="2")
    key, _ = alice_with_a_key(server, tmp_path)
    auth = {"Authorization": f"Bearer {server.login('alice').headers['Authorization'][7:]}"}
    # The address's share, taken by others: two event streams held open.
    held = [Listener(server.url, "/api/events", auth) for _ in range(2)]
    session = f"share-{port}"
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=5)  # full
        _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
        subprocess.run(["tmux", "set", "-t", session, "remain-on-exit", "on"], check=True)
        screen = _wait_for(session, lambda s: "connected" in s or "reconnecting" in s)
        assert "● connected" in screen and "projects" in screen, screen
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        time.sleep(1)  # its share goes with it
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health", timeout=5)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        for stream in held:
            stream.close()


def test_the_tuis_reach_the_api_at_the_address_it_is_bound_to() -> None:
    """An IPv6 --host made the URL http://::1:8000, which named no server."""
    from backend.connection_limits import connection_key
    from backend.settings import url_host
    from backend.ssh.server import api_address

    assert api_address("0.0.0.0") == api_address("::") == "127.0.0.1"
    assert connection_key(api_address("::")) == connection_key("::ffff:127.0.0.1") == "loopback"
    assert url_host(api_address("::1")) == "[::1]"
    assert url_host(api_address("10.1.2.3")) == "10.1.2.3"
    assert httpx.URL(f"http://{url_host(api_address('fe80::1'))}:8000").port == 8000


def test_one_connection_holds_at_most_ten_sessions(
    ssh_server: tuple[Server, int], tmp_path: Path
) -> None:
    """Each key prompt holds its session for two minutes, and one connection could open
    them without end."""
    server, port = ssh_server
    alice = server.add_user("alice")
    key = keypair(tmp_path, "alice")
    public = key.with_suffix(".pub").read_text()
    assert alice.client.post("/api/user/keys", json={"public_key": public}).status_code == 201

    async def scenario() -> None:
        async with asyncssh.connect(
            "127.0.0.1", port, username="alice", client_keys=[str(key)], known_hosts=None
        ) as conn:
            prompts = []
            for _ in range(10):  # an unproven key: each session waits at its password prompt
                process = await conn.create_process(term_type="xterm")
                assert "Password for alice" in await asyncio.wait_for(
                    process.stdout.readuntil("alice: "), 20
                )
                prompts.append(process)
            with pytest.raises(asyncssh.ChannelOpenError, match="at most 10 sessions"):
                await conn.create_process(term_type="xterm")
            prompts.pop().close()
            await asyncio.sleep(0.5)
            process = await conn.create_process("ls")  # one closed: one more may open
            told = await asyncio.wait_for(process.stderr.read(), 20)
            assert "this key has not logged in as alice yet" in told

    asyncio.run(scenario())


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_tui_over_ssh_shows_the_servers_public_url(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """It showed, and told new users to set DVC_STUDIO_URL to, the server's own loopback
    address, which is wrong on every other machine."""
    port = free_port()
    public = "https://studio.example.com"
    server = make_server(LIVESTUDIO_SSH_PORT=str(port), LIVESTUDIO_PUBLIC_URL=public + "/")
    key, _ = alice_with_a_key(server, tmp_path)
    session = f"public-{port}"
    _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
    try:
        screen = _wait_for(session, lambda s: "No projects yet" in s)
        flat = " ".join(screen.split())
        assert "studio.example.com" in screen.splitlines()[0]
        assert f"DVC_STUDIO_URL={public} " in flat and "127.0.0.1" not in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_without_a_public_url_the_tuis_show_the_address_the_client_reached() -> None:
    from backend.settings import Settings
    from backend.ssh.server import public_url

    settings = Settings(port=8123)
    assert public_url(settings, ("192.0.2.2", 2222)) == "http://192.0.2.2:8123"
    assert public_url(settings, ("::ffff:10.0.0.1", 2222, 0, 0)) == "http://10.0.0.1:8123"
    assert public_url(settings, ("2001:db8::7", 2222, 0, 0)) == "http://[2001:db8::7]:8123"
    given = Settings(port=8123, public_url="https://studio.example.com")
    assert public_url(given, ("192.0.2.2", 2222)) == "https://studio.example.com"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_an_idle_ssh_tui_is_warned_before_it_is_closed(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Someone watching a long run without a key press was cut off unannounced."""
    port = free_port()
    server = make_server(LIVESTUDIO_SSH_PORT=str(port), LIVESTUDIO_SSH_IDLE_TIMEOUT="8")
    key, _ = alice_with_a_key(server, tmp_path)
    session = f"idle-{port}"
    _tmux(session, " ".join([*ssh_args(key, port, "-t"), "x@127.0.0.1"]))
    try:
        subprocess.run(["tmux", "set", "-t", session, "remain-on-exit", "on"], check=True)
        _wait_for(session, lambda s: "projects" in s)
        started = time.monotonic()
        _wait_for(session, lambda s: "Press any key" in s or "closes soon" in s)
        assert time.monotonic() - started < 8  # before, not at, the close
        # A key keeps it open past the first deadline; left alone again, it closes.
        subprocess.run(["tmux", "send-keys", "-t", session, "j"], check=True)
        time.sleep(3)
        assert "closed after being idle" not in _screen(session)
        _wait_for(session, lambda s: "closed after being idle" in s, timeout=20)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

"""`livestudio db migrate` and `db backup` on databases filled by the real DVCLive."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import Server, User, free_port, run_cli
from tests.e2e.test_real_clients import make_dvc_repo, train


def answers(user: User) -> dict[str, object]:
    """What the API says about everything the user can see."""
    projects = user.client.get("/api/projects").json()
    rows = [user.client.get(f"/api/projects/{p['id']}/experiments").json() for p in projects]
    series = {
        row["id"]: user.client.get(f"/api/experiments/{row['id']}/series").json()
        for group in rows
        for row in group
    }
    return {"projects": projects, "rows": rows, "series": series}


def test_a_backup_taken_while_serving_answers_like_the_original(
    server: Server, alice: User, tmp_path: Path
) -> None:
    repo = make_dvc_repo(tmp_path / "mnist", "git@github.com:Acme/Mnist.git")
    train(repo, server, alice)
    before = answers(alice)
    dest = tmp_path / "backup.db"
    made = run_cli("db", "backup", str(dest), db=server.db)  # the server is still running
    assert made.returncode == 0, made.stderr
    assert f"Backed up {server.db} to {dest}" in made.stdout and "schema version" in made.stdout
    # Password hashes and everyone's runs: readable by the owner only, the copy too, and
    # the files SQLite makes beside them.
    beside = [server.db.with_name(server.db.name + end) for end in ("-wal", ".reserve")]
    for path in (server.db, *beside, dest):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    again = run_cli("db", "backup", str(dest), db=server.db)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert "Traceback" not in again.stderr
    copy = Server(db=dest, port=free_port())
    copy.start()
    try:
        session = copy.login("alice")
        assert answers(User("alice", alice.token, session)) == before
        # Tokens came along too: the same DVC_STUDIO_TOKEN posts to the copy.
        assert (
            User("alice", alice.token, session)
            .live({**_first_post(), "name": "after-restore"})
            .status_code
            == 200
        )
    finally:
        copy.stop()


def _first_post() -> dict[str, object]:
    from tests.conftest import fixture_bodies

    return fixture_bodies("dvclive_basic")[1]


def test_migrate_brings_a_database_to_the_current_schema(tmp_path: Path) -> None:
    from backend.db.migrations import MIGRATIONS

    newest = MIGRATIONS[-1][0]
    db = tmp_path / "new.db"
    mistyped = run_cli("db", "migrate", db=db)  # no file there: not made, said so
    assert mistyped.returncode == 1 and not db.exists()
    assert mistyped.stderr == f"livestudio: There is no database at {db}; name it with --db" + (
        " (`livestudio user add NAME` or `livestudio serve` makes a new one).\n"
    )
    for command in (("user", "list"), ("user", "lock", "bob"), ("token", "create", "bob")):
        refused = run_cli(*command, db=db)  # the same for every command that needs one
        assert refused.returncode == 1 and "There is no database at" in refused.stderr
    assert not db.exists()
    db.touch()  # an empty file: an empty SQLite database, at schema version 0
    # sqlite:/// plus an absolute path is relative (four slashes make it absolute): said.
    three = run_cli("user", "list", db=f"sqlite://{db}")
    assert three.returncode == 1 and f"give {db}, or sqlite:///{db} as a URL" in three.stderr
    first = run_cli("db", "migrate", db=db)
    assert first.returncode == 0, first.stderr
    assert f"from schema version 0 to {newest}" in first.stdout
    second = run_cli("db", "migrate", db=db)
    assert f"at the current schema (version {newest})" in second.stdout
    missing = run_cli("db", "backup", str(tmp_path / "b.db"), db=tmp_path / "nothing.db")
    assert missing.returncode == 1 and "no database at" in missing.stderr


def test_the_database_url_names_the_sqlite_file_and_refuses_what_it_cannot_serve(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    db = tmp_path / "by-url.db"
    db.touch()
    made = subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "migrate", "--database-url", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIVESTUDIO_")},
    )
    assert made.returncode == 0, made.stderr
    assert db.exists() and str(db) in made.stdout

    def refused(*args: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            capture_output=True,
            text=True,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("LIVESTUDIO_")}, **env},
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert done.stdout == ""  # nothing said first that is not so ("serving on…")
        return done.stderr

    # A PostgreSQL nobody answers at: one sentence naming it, its password hidden.
    unreachable = refused(
        "db", "migrate", "--database-url", f"postgresql://u:s3cret@127.0.0.1:{free_port()}/x"
    )
    assert "Cannot migrate postgresql://u:***@127.0.0.1" in unreachable
    assert "s3cret" not in unreachable
    assert "not sqlite:///PATH" in refused("db", "migrate", "--database-url", "mysql://x")
    assert "once" in refused("db", "migrate", "--db", str(db), "--database-url", f"sqlite:///{db}")
    both = refused(
        "db", "migrate", LIVESTUDIO_DB=str(db), LIVESTUDIO_DATABASE_URL=f"sqlite:///{db}"
    )
    assert "not both" in both
    workers = refused("serve", "--db", str(db), "--workers", "2", "--port", str(free_port()))
    assert "single writer" in workers and "--workers 1" in workers
    from_env = refused("serve", "--db", str(db), "--port", str(free_port()), LIVESTUDIO_WORKERS="2")
    assert "single writer" in from_env  # LIVESTUDIO_WORKERS is read like every setting
    for odd in ("many", "²"):
        assert "whole number" in refused("serve", "--db", str(db), LIVESTUDIO_WORKERS=odd)
    proxies = refused("serve", "--db", str(db), LIVESTUDIO_FORWARDED_ALLOW_IPS="10.0.0.1,proxy")
    assert "'proxy', which is not an address or a network" in proxies
    assert "give * alone" in refused(
        "serve", "--db", str(db), LIVESTUDIO_FORWARDED_ALLOW_IPS="10.0.0.1, *"
    )
    # A flag wins over its variable, which is then not read at all (its "abc" was refused
    # before the flag was looked at): what is refused here is the next mistake.
    flagged = refused(
        "serve", "--db", str(db), "--port", "1", "--stale-after", "0", LIVESTUDIO_PORT="abc"
    )
    assert "--stale-after" in flagged and "abc" not in flagged
    no_redis = refused(
        "serve", "--database-url", "postgresql://localhost/x", "--workers", "2", "--port", "1"
    )
    assert "--redis-url" in no_redis
    # db copy refuses a missing source, or one database twice, before saying it copies.
    assert "check --from" in refused(
        "db", "copy", "--from", str(tmp_path / "no.db"), "--to", str(db)
    )
    assert "the same database" in refused("db", "copy", "--from", str(db), "--to", str(db))
    # SQLite to SQLite: the hint names the file to serve, not a URL.
    dest = tmp_path / "copied.db"
    copied = subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "copy", "--from", str(db), "--to", str(dest)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIVESTUDIO_")},
    )
    assert copied.returncode == 0, copied.stderr
    assert f"`livestudio serve --db {dest}`" in copied.stdout
    from tests.conftest import drop_pg_database, new_pg_database

    url = new_pg_database()
    try:
        ssh = refused(
            *("serve", "--database-url", url, "--workers", "2", "--port", str(free_port())),
            *("--redis-url", "redis://127.0.0.1:6379/0", "--ssh-port", str(free_port())),
        )
        assert "single process" in ssh
    finally:
        drop_pg_database(url)


def test_a_new_database_is_private_also_behind_a_dangling_link(tmp_path: Path) -> None:
    from backend.db.connection import create_private

    (tmp_path / "real").mkdir()
    link = tmp_path / "live.db"
    link.symlink_to(tmp_path / "real" / "target.db")
    create_private(link)
    assert stat.S_IMODE((tmp_path / "real" / "target.db").stat().st_mode) == 0o600
    # An existing file is never opened (closing a descriptor would drop SQLite's locks)
    # nor changed.
    existing = tmp_path / "old.db"
    existing.write_bytes(b"x")
    existing.chmod(0o640)
    create_private(existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640 and existing.read_bytes() == b"x"


def test_project_add_names_its_owner_when_there_is_a_choice(server: Server, alice: User) -> None:
    db = server.database
    made = run_cli("project", "add", "vision", "https://github.com/acme/vision", db=db)
    assert made.returncode == 0, made.stderr  # one user: she owns it
    assert "Created project 'vision'" in made.stdout
    (project,) = alice.client.get("/api/projects").json()
    assert (project["name"], project["owner"], project["subdir"]) == ("vision", "alice", None)

    server.add_user("bob")
    unsure = run_cli("project", "add", "nlp", "https://github.com/acme/nlp", db=db)
    assert unsure.returncode == 1 and unsure.stderr.strip().count("\n") == 0
    assert "--owner NAME" in unsure.stderr
    mono = ("project", "add", "nlp", "https://github.com/acme/nlp", "--subdir", "./models/a/")
    assert run_cli(*mono, "--owner", "alice", db=db).returncode == 0
    nlp = next(p for p in alice.client.get("/api/projects").json() if p["name"] == "nlp")
    assert nlp["subdir"] == "models/a"
    bad = run_cli("project", "add", "x", "not a url", "--owner", "alice", db=db)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.stderr.strip()
    nobody = run_cli("project", "add", "x", "https://github.com/a/b", "--owner", "zed", db=db)
    assert nobody.returncode == 1 and "zed" in nobody.stderr


def _copy_in(folder: Path, source: Path, dest: str) -> subprocess.CompletedProcess[str]:
    """``livestudio db copy --from SOURCE --to DEST`` run in ``folder``."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "copy", "--from", str(source), "--to", dest],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_refused_copy_or_backup_leaves_no_file_behind(tmp_path: Path, monkeypatch) -> None:
    import sqlite3
    from contextlib import closing

    import pytest

    from backend.db import maintenance
    from cli import admin

    db = tmp_path / "live.db"
    made = run_cli("user", "add", "alice", "--password-stdin", db=db, stdin="p" * 9 + "\n")
    assert made.returncode == 0, made.stderr
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")  # a newer livestudio's
    copied = _copy_in(tmp_path, db, "c.db")
    assert copied.returncode == 1 and "newer than this livestudio" in copied.stderr
    assert "nothing was written" in copied.stderr
    assert not any(p.name.startswith("c.db") for p in tmp_path.iterdir())
    # A backup only reads: it is made, and says which livestudio can serve it.
    backup = run_cli("db", "backup", str(tmp_path / "newer.db"), db=db)
    assert backup.returncode == 0, backup.stderr
    assert "schema version 999); newer than this livestudio knows" in backup.stdout
    assert "serve it with `livestudio serve" not in backup.stdout
    # Through a link that points nowhere yet: the file made behind it goes, the link stays.
    (tmp_path / "link.db").symlink_to(tmp_path / "target.db")
    linked = _copy_in(tmp_path, db, "link.db")
    assert linked.returncode == 1 and "nothing was written" in linked.stderr
    assert (tmp_path / "link.db").is_symlink() and not (tmp_path / "target.db").exists()

    def disk_fills(source: Path, dest: Path) -> tuple[int, int]:  # as SQLite leaves it
        dest.write_bytes(b"half")
        dest.with_name(dest.name + "-journal").write_bytes(b"half")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(maintenance, "backup_file", disk_fills)
    with pytest.raises(admin.CliError, match="database or disk is full"):
        admin.backup_db(db, tmp_path / "b.db")
    assert not any(p.name.startswith("b.db") for p in tmp_path.iterdir())


def test_a_copy_replacing_a_served_sqlite_database_ends_its_streams_once(
    tmp_path: Path, make_server
) -> None:
    """The replace was told to streams by the newest event id going back: an event
    committed within the second hid it, and once told, the server refused every new
    stream until it restarted; then, by a marker after the copied events, which an open
    stream read on its way to it, filtered by the replaced database's access."""
    from tests.backend.sse import Listener
    from tests.conftest import fixture_bodies

    body = fixture_bodies("dvclive_basic")[1]
    source = Server(db=tmp_path / "old.db", port=free_port())
    source.start()
    try:
        kept = source.add_user("alice")
        for step in range(150):  # more events than the database it replaces holds
            kept.live({**body, "name": "from-the-copy", "step": step})
    finally:
        source.stop()
    server = make_server()
    alice = server.add_user("alice")
    for step in range(20):
        alice.live({**body, "name": "gone", "step": step})
    auth = {"Authorization": str(alice.client.headers["Authorization"])}
    stream = Listener(server.url, "/api/events", auth)
    try:
        args = ["db", "copy", "--from", str(source.db), "--to", str(server.db), "--replace"]
        copied = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert copied.returncode == 0, copied.stderr
        again = User("alice", kept.token, alice.client)
        assert again.live({**body, "name": "right-after"}).status_code == 200
        assert stream.ended.wait(10), "the open stream went on as if nothing had changed"
        # Nothing of the copied database reached it, filtered by the replaced one's access.
        sent = []
        while not stream.events.empty():
            sent.append(stream.events.get_nowait())
        assert not [e for e in sent if "from-the-copy" in json.dumps(e.data)]
    finally:
        stream.close()
    fresh = server.login("alice")
    later = Listener(server.url, "/api/events", {"Authorization": fresh.headers["Authorization"]})
    try:
        assert again.live({**body, "name": "later", "step": 1}).status_code == 200
        while later.take_until("experiment")[-1].data["name"] != "later":
            pass
        assert not later.ended.is_set()  # new streams stay open
    finally:
        later.close()
    # Back from far before the copy, a client is told to reset, and replayed only what
    # came after it.
    back = Listener(
        server.url,
        "/api/events",
        {"Authorization": fresh.headers["Authorization"], "Last-Event-ID": "1"},
    )
    try:
        replayed = back.take_until("experiment")
        assert replayed[0].event == "reset"
        assert not [e for e in replayed if "from-the-copy" in json.dumps(e.data)]
    finally:
        back.close()

"""Shared fixtures: a real ``livestudio serve`` on a free port with a temporary database.

The engine is SQLite (a temporary file) unless ``LIVESTUDIO_TEST_ENGINE=postgresql``: then
every server gets a schema of its own in the PostgreSQL database named by
``LIVESTUDIO_TEST_POSTGRES`` (default: the machine's ``test`` database), dropped after the
test. Tests that look inside the SQLite file itself are marked ``sqlite_only``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

# Captured from the real clients (a copy of the team handbook's fixtures/studio-live).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "studio-live"
PASSWORD = "correct-horse-battery"
ENGINE = os.environ.get("LIVESTUDIO_TEST_ENGINE", "sqlite")
# argon2id at 1 MiB instead of 64: still the real KDF, but hashing and checking the
# hundreds of passwords the suite makes costs milliseconds instead of minutes. Servers and
# commands started by tests inherit it.
os.environ.setdefault("LIVESTUDIO_PASSWORD_MEMORY_KIB", "1024")
POSTGRES = os.environ.get("LIVESTUDIO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, leave out (deselected) the tests that look inside SQLite's file and
    those of the HTTP layer alone, which no database takes part in (run once, on SQLite)."""
    if ENGINE != "postgresql":
        return

    def left_out(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(m) for m in ("sqlite_only", "http_only"))

    out = [item for item in items if left_out(item)]
    if out:
        config.hook.pytest_deselected(items=out)
        items[:] = [item for item in items if not left_out(item)]


def pg_schema_url(schema: str) -> str:
    """A URL of the test database whose tables live in ``schema`` (extensions in public)."""
    sep = "&" if "?" in POSTGRES else "?"
    return f"{POSTGRES}{sep}options=-csearch_path%3D{schema},public"


def pg_admin(sql: str) -> None:
    """Run one statement on the test database (schemas, extensions)."""
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql)


def new_pg_database() -> str:
    """A fresh, empty schema in the test database; its URL."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    pg_admin(f"CREATE EXTENSION IF NOT EXISTS citext SCHEMA public; CREATE SCHEMA {schema}")
    return pg_schema_url(schema)


def drop_pg_database(url: str) -> None:
    """Drop a schema made by ``new_pg_database``."""
    schema = url.rsplit("search_path%3D", 1)[1].split(",", 1)[0]
    pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def db_flags(db: Path | str) -> list[str]:
    """The command-line flags naming a database: a SQLite file or a URL."""
    return ["--database-url", db] if isinstance(db, str) else ["--db", str(db)]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(
    *args: str, db: Path | str, stdin: str | None = None, env: dict[str, str] | None = None
):
    """Run the real ``livestudio`` command line on a database (file or URL)."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args, *db_flags(db)],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


@dataclass
class User:
    """A user with a profile token and a logged-in session client."""

    name: str
    token: str
    client: httpx.Client

    def change_password(self, current: str, new: str, reset_tokens: bool) -> httpx.Response:
        """``POST /api/user/password`` with this user's session."""
        return self.client.post(
            "/api/user/password",
            json={"current_password": current, "new_password": new, "reset_tokens": reset_tokens},
        )

    def live(self, body: dict[str, object]) -> httpx.Response:
        """Post one live event with this user's token, as DVCLive does."""
        return self.client.post(
            "/api/live", json=body, headers={"Authorization": f"token {self.token}"}
        )


class PortTaken(RuntimeError):
    """The server could not listen: another process took its port first."""


@dataclass
class Server:
    """A real server process; restartable on the same database."""

    db: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    database_url: str = ""
    """A PostgreSQL URL to serve instead of the SQLite file ``db``."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path | str:
        """What the server serves: the PostgreSQL URL, or the SQLite file."""
        return self.database_url or self.db

    def start(self) -> None:
        self.start_with()

    def start_new(self) -> None:
        """The first start: on a port another test's server took meanwhile (``free_port``
        is free only when asked; xdist's workers ask at once), again on another."""
        for _ in range(3):
            try:
                self.start_with()
                return
            except PortTaken:
                self.port = free_port()
        self.start_with()

    def start_with(self, preexec_fn: Callable[[], None] | None = None) -> None:
        """Start the server process (``preexec_fn`` runs in it first: resource limits).

        Started means this process is listening (its log says so): a 200 from /health
        alone came from another test's server on the same port, and the test then posted
        to that one."""
        self.log = self.db.with_suffix(".log")
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "serve",
                *db_flags(self.database),
                "--port",
                str(self.port),
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=preexec_fn,
        )
        # (its own log: a server of another test on the same port answers /health too)
        listening = f":{self.port} (Press CTRL+C".encode()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.log.open("rb") as log:
                log.seek(offset)
                said = log.read()
            if listening in said:
                try:
                    if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            if self.proc.poll() is not None:
                if b"address already in use" in said:
                    raise PortTaken(self.port)
                break
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15, headers=headers)

    def add_user(self, name: str, password: str = PASSWORD) -> User:
        """A user with a profile token, made as `livestudio user add` and `token create` do
        (their own code, in this process: the commands themselves are tested elsewhere)."""
        from cli import admin

        admin.add_user(self.database, name, password, admin=False)
        token = admin.create_token(self.database, name).token
        assert token.startswith("lst_")
        return User(name, token, self.login(name, password))

    def login(self, name: str, password: str = PASSWORD) -> httpx.Client:
        resp = httpx.post(
            f"{self.url}/api/auth/login", json={"username": name, "password": password}
        )
        assert resp.status_code == 200, resp.text
        return self.client(Authorization=f"Bearer {resp.json()['session_token']}")


def _started_server(db: Path, env: dict[str, str]) -> Server:
    url = new_pg_database() if ENGINE == "postgresql" else ""
    server = Server(db=db, port=free_port(), env=env, database_url=url)
    server.start_new()
    return server


def _stopped(server: Server) -> None:
    server.stop()
    if server.database_url:
        drop_pg_database(server.database_url)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with extra ``LIVESTUDIO_*`` settings; all stopped at the end."""
    started: list[Server] = []

    def make(**env: str) -> Server:
        server = _started_server(tmp_path / f"live{len(started)}.db", env)
        started.append(server)
        return server

    yield make
    for server in started:
        _stopped(server)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a module's tests whose every request is refused, so they leave
    nothing behind for each other (a server each costs seconds of the suite)."""
    server = _started_server(tmp_path_factory.mktemp("shared") / "live.db", {})
    yield server
    _stopped(server)


@pytest.fixture(scope="module")
def shared_alice(shared_server: Server) -> User:
    """A user with a token and a session on ``shared_server``."""
    return shared_server.add_user("alice")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path | str]:
    """An empty database of the engine under test: a SQLite file or a PostgreSQL URL."""
    if ENGINE != "postgresql":
        yield tmp_path / "test.db"
        return
    url = new_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    """One running server."""
    return make_server()


@pytest.fixture
def alice(server: Server) -> User:
    """A user with a token and a session on ``server``."""
    return server.add_user("alice")


def fixture_bodies(name: str) -> list[dict[str, object]]:
    """The request bodies of one captured client run."""
    lines = (FIXTURES / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line)["body"] for line in lines if line.strip()]


def progressive_jpeg(size: tuple[int, int] = (64, 48), repeat_last_scan: int = 0) -> bytes:
    """A real progressive JPEG; ``repeat_last_scan`` copies its last refinement scan that
    many times more (each one a full pass over the picture for any decoder)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, "JPEG", progressive=True, quality=50)
    data = buffer.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * repeat_last_scan + data[-2:]


@pytest.fixture
def ingest_db(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, str]]:
    """A migrated SQLite file with a user: (the writer's kind of connection, an access token).

    For tests of the write jobs themselves, without a server."""
    from backend.db.connection import connect_sync
    from backend.db.migrations import migrate
    from cli import admin

    db = tmp_path / "b.db"
    admin.add_user(db, "ada", "correct horse battery", admin=True)
    token = admin.create_token(db, "ada").token
    conn = connect_sync(db)
    migrate(conn)
    yield conn, token
    conn.close()

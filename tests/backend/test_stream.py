"""The event stream on a real server: live delivery, replay, reset, heartbeats."""

import asyncio
import contextlib
import queue
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from backend.db import repository
from backend.db.repository import StoredEvent
from backend.services import broadcast
from tests.backend.sse import Listener
from tests.conftest import PASSWORD, Server, User, fixture_bodies

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


def test_a_stored_image_is_announced_with_its_path_and_step(server: Server, alice: User) -> None:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    experiment = alice.live(BODIES[0]).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    listener = Listener(server.url, f"/api/projects/{project_id}/events", session_headers(alice))
    # An image-only post (DVCLive's `log_image` between steps) adds no rows: the event
    # still tells viewers which image to fetch again.
    path = "dvclive/plots/images/sample.png"
    alice.live({**BODIES[2], "step": 3, "plots": {path: {"image": png}}})
    seen = listener.take_until("points")
    assert seen[-1].data == {
        "experiment_id": experiment,
        "series": {},
        "images": {"sample.png": 3},
    }
    listener.close()
    fetched = alice.client.get(f"/api/experiments/{experiment}/images/sample.png")
    assert fetched.status_code == 200 and fetched.content == buffer.getvalue()


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


@pytest.mark.parametrize("revoke", ["logout", "new token", "password", "delete token"])
def test_revoking_a_credential_ends_its_open_streams_at_once(
    server: Server, alice: User, revoke: str
) -> None:
    """Nothing committed after a revocation reaches a stream opened with what was revoked."""
    carol = server.add_user("carol")
    carol.live(BODIES[0])  # the project exists, so every stream would show its runs
    login = carol.client.post("/api/auth/login", json={"username": "carol", "password": PASSWORD})
    other = {"Authorization": f"Bearer {login.json()['session_token']}"}
    by_session = Listener(server.url, "/api/events", other)
    by_token = Listener(server.url, "/api/events", {"Authorization": f"Bearer {carol.token}"})
    kept = Listener(server.url, "/api/events", session_headers(carol))
    if revoke == "logout":
        assert carol.client.post("/api/auth/logout", headers=other).status_code == 204
        gone, staying = [by_session], [by_token, kept]
    elif revoke == "new token":
        carol.token = carol.client.post("/api/user/token").json()["token"]
        gone, staying = [by_token], [by_session, kept]
    elif revoke == "delete token":
        assert carol.client.delete("/api/user/token").status_code == 204
        gone, staying = [by_token], [by_session, kept]
        carol.token = carol.client.post("/api/user/token").json()["token"]
    else:
        changed = carol.change_password(PASSWORD, "a-new-password-2", reset_tokens=True)
        assert changed.status_code == 204, changed.text
        carol.token = carol.client.post("/api/user/token").json()["token"]
        gone, staying = [by_session, by_token], [kept]
    for listener in gone:
        assert listener.ended.wait(5), "the stream stayed open"
    carol.live({**BODIES[0], "name": "after-revocation"})
    for listener in staying:
        names = [e.data.get("name") for e in listener.take_until("experiment")]
        assert "after-revocation" in names and not listener.ended.is_set()
    for listener in gone:
        assert all(e.data.get("name") != "after-revocation" for e in list(listener.events.queue))
        listener.close()
    for listener in staying:
        listener.close()


def test_a_busy_stream_ends_when_its_session_expires(make_server) -> None:
    """Busy streams get no heartbeat, yet their credential is checked as often."""
    server = make_server(LIVESTUDIO_SESSION_DAYS="0.00004", LIVESTUDIO_HEARTBEAT="1")  # 3.5 s
    carol = server.add_user("carol")
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "carol", "password": PASSWORD}
    )
    listener = Listener(
        server.url, "/api/events", {"Authorization": f"Bearer {login.json()['session_token']}"}
    )
    started = time.monotonic()
    step = 0
    while not listener.ended.is_set() and time.monotonic() - started < 15:
        carol.live({**BODIES[1], "step": step})  # an event every 0.2 s: never quiet
        step += 1
        time.sleep(0.2)
    assert listener.ended.is_set(), "the stream outlived its session"
    assert listener.events.qsize() > 3  # it was busy, and ended by itself
    listener.close()


def _open_stream(server: Server, token: str) -> tuple[socket.socket, bytes]:
    """A raw event stream; returns the socket and what came until it is counted (connected)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    got = b""
    while b": connected" not in got and b"\r\n\r\n{" not in got:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return sock, got


def test_one_user_cannot_hold_open_streams_without_bound(server: Server, alice: User) -> None:
    limit = broadcast.MAX_STREAMS_PER_USER
    # All at once: requests arriving together must not all pass the check first.
    with ThreadPoolExecutor(32) as pool:
        opened = list(pool.map(lambda _: _open_stream(server, alice.token), range(limit + 16)))
    held = [(sock, got) for sock, got in opened if got.startswith(b"HTTP/1.1 200")]
    refused = [(sock, got) for sock, got in opened if got.startswith(b"HTTP/1.1 429")]
    assert (len(held), len(refused)) == (limit, 16)
    assert all(b"close some" in got for _, got in refused)
    for sock, _ in refused:
        sock.close()
    bob = server.add_user("bob")  # others are not affected
    other, got = _open_stream(server, bob.token)
    assert got.startswith(b"HTTP/1.1 200")
    other.close()
    held.pop()[0].close()  # one closed: one more may open
    again: tuple[socket.socket, bytes] | None = None
    for _ in range(50):
        again = _open_stream(server, alice.token)
        if again[1].startswith(b"HTTP/1.1 200"):
            break
        again[0].close()
        time.sleep(0.1)
    assert again is not None and again[1].startswith(b"HTTP/1.1 200")
    for sock, _ in [*held, again]:
        sock.close()


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


def test_a_second_ctrl_c_ends_the_server_at_once(server: Server, alice: User) -> None:
    """It skips the application's shutdown, whose database threads then held the process
    open for good (a third Ctrl-C did not help either)."""
    import signal

    listener = Listener(server.url, "/api/events", session_headers(alice))
    assert alice.live(BODIES[0]).status_code == 200
    assert server.proc is not None
    server.proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(20) == 128 + signal.SIGINT
    server.proc = None
    listener.close()
    server.start()  # and what it acknowledged is there
    (project,) = alice.client.get("/api/projects").json()
    assert project["experiments"] == 1


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


def test_a_long_gap_is_sent_in_bounded_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events a process's channel did not bring (Redis away) are read from the table and
    sent in pieces of at most ``BATCH`` events, not gathered whole in memory first (found
    in review: 100 MB at once for 20,000 missed events)."""
    table = [StoredEvent(kind="points", data=b'{"x":1}', id=i) for i in range(1, 1001)]

    async def events_after(db: object, last: int, limit: int) -> list[StoredEvent]:
        return [e for e in table if e.id > last][:limit]

    async def event_id_range(db: object) -> tuple[int, int]:
        return 1, 0  # the stream starts before any of them

    async def replaced_after(db: object, last: int) -> None:
        return None  # (no database was replaced)

    monkeypatch.setattr(repository, "events_after", events_after)
    monkeypatch.setattr(repository, "event_id_range", event_id_range)
    monkeypatch.setattr(repository, "replaced_after", replaced_after)
    channel: asyncio.Queue[bytes] = asyncio.Queue()

    class Everything:
        user_id = 0

        def accepts(self, _: StoredEvent) -> bool:
            return True

    async def read() -> list[bytes]:
        stream = broadcast.stream(
            db=cast(Any, None),
            channels=cast(Any, FakeChannels(channel)),
            event_filter=cast(Any, Everything()),
            last_event_id=None,
            heartbeat=1000,
            backlog=10,
        )
        assert await anext(stream) == broadcast.CONNECTED
        channel.put_nowait(broadcast._encode([table[-1]]))  # the channel brings only the last
        pieces = []
        while sum(p.count(b"event: ") for p in pieces) < len(table):
            pieces.append(await anext(stream))
        await stream.aclose()
        return pieces

    pieces = asyncio.run(read())
    counts = [p.count(b"event: ") for p in pieces]
    assert max(counts) <= broadcast.BATCH and sum(counts) == len(table)
    ids = [int(line[4:]) for p in pieces for line in p.split(b"\r\n") if line.startswith(b"id: ")]
    assert ids == list(range(1, 1001))


@pytest.mark.parametrize("kind", ["project", "all"])
def test_a_removal_committed_while_the_stream_opens_is_not_missed(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The request reads Dave's membership; his removal commits (event 10) before the
    stream reads where it starts (10), so it never sees that event: the membership read
    again from there is what decides (found in review: removed members kept getting a
    running experiment's rows for as long as it ran)."""
    project = repository.ProjectScope(7, "github.com/acme/p", None, {1: 0, 2: 0})
    dave = 2

    async def event_id_range(db: object) -> tuple[int, int]:
        return 1, 10

    monkeypatch.setattr(repository, "event_id_range", event_id_range)

    stale: broadcast.EventFilter = (
        broadcast.ProjectFilter(dave, project)
        if kind == "project"
        else broadcast.UserFilter(dave, {project.id: project})
    )

    async def refilter(as_of: int) -> broadcast.EventFilter | None:
        assert as_of == 10
        return None if kind == "project" else broadcast.UserFilter(dave, {}, as_of)

    row = StoredEvent(
        kind="experiment", data=b'{"id":3}', id=11, repo_key=project.repo_key, poster_id=1
    )

    async def sent(refresh: object) -> bytes:
        channel: asyncio.Queue[bytes] = asyncio.Queue()
        stream = broadcast.stream(
            db=cast(Any, None),
            channels=cast(Any, FakeChannels(channel)),
            event_filter=stale,
            last_event_id=None,
            heartbeat=1000,
            backlog=10,
            refilter=cast(Any, refresh),
        )
        try:
            out = [await anext(stream)]
        except StopAsyncIteration:  # it ended at once: the user may no longer read
            return b""
        channel.put_nowait(broadcast._encode([row]))
        with contextlib.suppress(TimeoutError, StopAsyncIteration):
            out.append(await asyncio.wait_for(anext(stream), 0.5))
        await stream.aclose()
        return b"".join(out)

    fresh = asyncio.run(sent(refilter))
    assert b"event: experiment" not in fresh
    if kind == "project":  # the stream ends, saying why, as the removal's event would have
        assert fresh == b'id: 10\r\nevent: project_deleted\r\ndata: {"project_id":7}\r\n\r\n'

    # Without reading it again the stale membership lets the row through: the window.
    assert b"event: experiment" in asyncio.run(sent(None))


class FakeChannels:
    """Litestar's channels plugin for one subscriber, fed by hand through ``queue``."""

    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue

    @contextlib.asynccontextmanager
    async def start_subscription(self, _: object) -> AsyncIterator["FakeChannels"]:
        yield self

    async def iter_events(self) -> AsyncIterator[bytes]:
        while True:
            yield await self.queue.get()


def _events_file(db: Path, events: list[tuple[str, str | None, bytes]]) -> Path:
    """A new SQLite database holding these events (kind, repository key, data), in order."""
    from backend.db.connection import connect_sync
    from backend.db.maintenance import migrate_file

    migrate_file(db)
    conn = connect_sync(db)
    for kind, repo, data in events:
        conn.execute("BEGIN")
        repository.insert_event(
            conn, repository.NewEvent(kind=kind, data=data, repo_key=repo, poster_id=1)
        )
        conn.execute("COMMIT")
    conn.close()
    return db


async def test_a_replay_reads_the_data_of_the_events_it_shows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user replaying from Last-Event-ID 0 in a loop read every user's megabytes of
    points, only to drop them, and slowed everyone's requests to seconds."""
    from backend.db.connection import connect_async

    db = _events_file(
        tmp_path / "replay.db", [("points", f"r{i % 3}", b"x" * 100_000) for i in range(30)]
    )
    read: list[list[int]] = []
    real = repository.event_data

    async def recording(db: object, ids: list[int]) -> dict[int, bytes]:
        read.append(ids)
        return await real(db, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(repository, "event_data", recording)
    reader = await connect_async(db)
    try:
        seen = [
            (event.id, shown, len(event.data))
            async for event, shown in broadcast.shown_events(
                reader, 0, lambda event: event.repo_key == "r0"
            )
        ]
    finally:
        await reader.close()
    assert len(seen) == 30
    assert read == [[event_id for event_id, shown, _ in seen if shown]]  # one read, of 10
    assert all(size == (100_000 if shown else 0) for _, shown, size in seen)


@pytest.mark.parametrize("failing", [1, 2])
async def test_a_replay_that_fails_half_way_goes_on_without_losing_or_repeating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """A membership change asked about, then a read failed: the retry asked again, and a
    filter that had taken it in (revoked) dropped what it was owed."""
    import sqlite3

    from backend.db.connection import connect_async

    kinds = [("points", "r0"), ("project", None), ("points", "r0"), ("points", "r1")]
    db = _events_file(tmp_path / "retry.db", [(kind, repo, b"{}") for kind, repo in kinds])
    calls: list[list[int]] = []
    real = repository.event_data

    async def failing_once(db: object, ids: list[int]) -> dict[int, bytes]:
        calls.append(ids)
        if len(calls) == failing:
            raise sqlite3.OperationalError("database is locked")
        return await real(db, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(repository, "event_data", failing_once)
    applied: list[int] = []

    def accepts(event: StoredEvent) -> bool:
        if event.kind == "project":
            applied.append(event.id)  # (a filter's membership change)
            return True
        return event.repo_key == "r0"

    reader = await connect_async(db)
    last, shown = 0, []
    try:
        for _ in range(3):  # as the stream's heartbeat catch-up retries
            try:
                async for event, ok in broadcast.shown_events(reader, last, accepts):
                    last = event.id
                    if ok:
                        shown.append((event.id, event.data))
                break
            except sqlite3.OperationalError:
                continue
    finally:
        await reader.close()
    assert applied == [2]  # asked once, as it was yielded
    assert shown == [(1, b"{}"), (2, b"{}"), (3, b"{}")] and last == 4


@pytest.mark.parametrize(("last_seen", "told_reset"), [(5, True), (45, False)])
def test_a_stream_far_behind_is_told_to_reset_rather_than_replayed(
    monkeypatch: pytest.MonkeyPatch, last_seen: int, told_reset: bool
) -> None:
    """``Last-Event-ID: 0`` replayed the whole table (200,000 events by default) for each
    such request; past ``REPLAY_AT_MOST`` the client refetches instead."""
    table = [StoredEvent(kind="project_deleted", data=b"{}", id=i) for i in range(1, 51)]

    async def events_after(
        db: object, last: int, limit: int, *, lazy: bool = False
    ) -> list[StoredEvent]:
        return [e for e in table if e.id > last][:limit]

    async def event_id_range(db: object) -> tuple[int, int]:
        return 1, 50

    async def replaced_after(db: object, last: int) -> None:
        return None  # (no database was replaced)

    monkeypatch.setattr(repository, "events_after", events_after)
    monkeypatch.setattr(repository, "event_id_range", event_id_range)
    monkeypatch.setattr(repository, "replaced_after", replaced_after)
    monkeypatch.setattr(broadcast, "REPLAY_AT_MOST", 10)

    class Everything:
        user_id = 0

        def accepts(self, _: StoredEvent) -> bool:
            return True

    async def first() -> bytes:
        stream = broadcast.stream(
            db=cast(Any, None),
            channels=cast(Any, FakeChannels(asyncio.Queue())),
            event_filter=cast(Any, Everything()),
            last_event_id=last_seen,
            heartbeat=1000,
            backlog=10,
        )
        try:
            return await anext(stream)
        finally:
            await stream.aclose()

    sent = asyncio.run(first())
    assert (b"event: reset" in sent) is told_reset
    assert sent.count(b"event: project_deleted") == (0 if told_reset else 5)


@pytest.mark.sqlite_only  # damages the SQLite file's pages
def test_a_stream_whose_replay_hits_a_damaged_page_ends_in_one_log_line(
    server: Server, alice: User
) -> None:
    """Replaying from Last-Event-ID across an unreadable page of the events table raised
    out of the stream: a traceback in the log each time the client came back."""
    import sqlite3
    from contextlib import closing

    for step in range(400):  # enough events for the table to span many pages
        assert alice.live({**BODIES[1], "step": step, "name": "many"}).status_code == 200
    server.stop()
    with closing(sqlite3.connect(server.db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [
            p
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"
                " ORDER BY path"
            )
        ]
    assert len(pages) > 6
    with open(server.db, "r+b") as file:  # middle leaves: the first and last ids still read
        for page in pages[len(pages) // 3 : 2 * len(pages) // 3]:
            file.seek((page - 1) * page_size)
            file.write(b"\xff" * page_size)
    server.start()
    with alice.client.stream("GET", "/api/events", headers={"Last-Event-ID": "1"}) as stream:
        assert stream.status_code == 200
        assert b"".join(stream.iter_bytes()) == b""  # ended: the client comes back later
    log = server.log.read_text() if server.log else ""
    assert "stream could not start, ending it:" in log
    assert "Traceback" not in log


def test_only_the_database_away_or_damaged_passes_for_an_outage() -> None:
    """A stream that could not start ends quietly when the database failed, but a bug of
    ours (a wrong statement, a closed connection) still surfaces as one."""
    import sqlite3

    from backend.db.connection import our_mistake

    assert not our_mistake(sqlite3.OperationalError("unable to open database file"))
    assert not our_mistake(sqlite3.DatabaseError("database disk image is malformed"))
    assert our_mistake(sqlite3.ProgrammingError("Incorrect number of bindings supplied"))
    assert our_mistake(sqlite3.InterfaceError("Cannot operate on a closed database."))


def test_what_the_cli_commits_reaches_open_streams_within_seconds(make_server) -> None:
    """`livestudio project add` (another program on the database) commits events the
    server never publishes: streams found them only at their next heartbeat (here a
    minute away), and a busy stream whose later events were all the server's own, never."""
    from tests.conftest import run_cli

    server = make_server(LIVESTUDIO_HEARTBEAT="60")
    alice = server.add_user("alice")
    listener = Listener(server.url, "/api/events", session_headers(alice))
    try:
        started = time.monotonic()
        made = run_cli(
            "project", "add", "from-cli", "git@github.com:acme/cli.git", db=server.database
        )
        assert made.returncode == 0, made.stderr
        (event,) = listener.take(1, timeout=8)
        assert event.event == "project" and event.data["name"] == "from-cli"
        assert time.monotonic() - started < 8  # not the heartbeat's 60 s
    finally:
        listener.close()


async def test_streams_are_told_of_an_event_only_once_it_had_a_second_to_be_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Told the newest id just read, most streams of a busy server (its own events still on
    their way through Redis) were behind it and read the table for nothing, each second."""
    reads = iter([5, 7, 7, 9, 9, 9])
    told: list[int] = []

    async def newest(_db: object) -> tuple[int, int]:
        try:
            return 1, next(reads)
        except StopIteration:
            raise asyncio.CancelledError from None

    class Streams:
        def catch_up_all(self, newest: int) -> None:
            told.append(newest)

    monkeypatch.setattr(broadcast.repository, "event_id_range", newest)
    monkeypatch.setattr(broadcast, "OTHERS_EVERY", 0)
    with contextlib.suppress(asyncio.CancelledError):
        await broadcast.follow_other_writers(cast(Any, None), cast(Any, Streams()))
    # 5 was there before; 7 is told a read after it was first seen, 9 likewise, once each.
    assert told == [7, 9]

"""Every refusal of SPEC §4 and access across users, on a real server."""

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing

import httpx
import pytest

from backend.db.connection import connect_sync
from tests.backend.sse import Listener
from tests.conftest import Server, User, fixture_bodies, free_port, run_cli

BODY = fixture_bodies("dvclive_basic")[1]


def _raw(extra: str) -> bytes:
    """BODY as JSON text with ``extra`` (members, as written) added at its end."""
    return json.dumps(BODY)[:-1].encode() + b", " + extra.encode() + b"}"


def post(server: Server, body: object, token: str | None, **kw: object) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    if isinstance(body, bytes):
        return httpx.post(f"{server.url}/api/live", content=body, headers=headers, timeout=30)
    return httpx.post(f"{server.url}/api/live", json=body, headers=headers, timeout=30)


def test_missing_token_names_the_variable(shared_server: Server) -> None:
    server = shared_server
    resp = post(server, BODY, None)
    assert resp.status_code == 401
    assert "DVC_STUDIO_TOKEN" in resp.json()["detail"]


def test_an_authorization_header_of_another_form_is_called_that_not_missing(
    shared_server: Server, shared_alice: User
) -> None:
    url = shared_server.url
    for header in (f"Basic {shared_alice.token}", shared_alice.token, "token", "Bearer"):
        headers = {"Authorization": header}
        for method, path in (
            ("POST", "/api/live"),
            ("GET", "/api/projects"),
            ("POST", "/webhook/dvc"),
        ):
            resp = httpx.request(method, f"{url}{path}", json=BODY, headers=headers, timeout=30)
            assert resp.status_code == 401, (header, path, resp.text)
            detail = resp.json()["detail"]
            assert "not understood" in detail and "Authorization: token" in detail, detail


def test_unknown_regenerated_and_deleted_tokens_are_refused_at_once(
    server: Server, alice: User
) -> None:
    assert post(server, BODY, "lst_made_up").status_code == 401
    assert post(server, BODY, alice.token).status_code == 200
    fresh = alice.client.post("/api/user/token").json()["token"]
    old = post(server, BODY, alice.token)
    assert old.status_code == 401 and "revoked" in old.json()["detail"]
    assert post(server, BODY, fresh).status_code == 200
    assert alice.client.delete("/api/user/token").status_code == 204
    assert post(server, BODY, fresh).status_code == 401


def test_token_without_experiments_scope_is_forbidden(server: Server, alice: User) -> None:
    # Device login (a later feature) is what creates scoped tokens; make one directly.
    from backend.services.accounts import client_token

    with closing(connect_sync(server.database)) as conn:  # the server's own kind of connection
        user_id = conn.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0]
        scoped = client_token(conn, user_id, "datasets-only", frozenset({"DATASETS"})).token
    resp = post(server, BODY, scoped)
    assert resp.status_code == 403
    assert "EXPERIMENTS" in resp.json()["detail"]
    # GET /api/live asks the same of a token without posting (`livestudio run` does).
    session = alice.client.headers["Authorization"].split()[1]
    for token, status in ((alice.token, 200), (scoped, 403), (session, 401), ("lst_x", 401)):
        checked = httpx.get(f"{server.url}/api/live", headers={"Authorization": f"token {token}"})
        assert checked.status_code == status, (token, checked.text)
        if status == 200:  # with the server's time, which `livestudio run` goes by
            assert abs(checked.json()["time"] - time.time()) < 5
    assert httpx.get(f"{server.url}/api/live").status_code == 401  # a stranger


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "Expected `object`"),
        ({**BODY, "type": "party"}, "`$.type`"),
        ({k: v for k, v in BODY.items() if k != "name"}, "`name`"),
        ({**BODY, "name": "   "}, "`$.name` is blank"),
        ({**BODY, "step": "three"}, "`$.step`"),
        ({**BODY, "step": -1}, "`$.step`"),
        ({**BODY, "baseline_sha": "abc"}, "`$.baseline_sha`"),
        ({**BODY, "client": "curl"}, "`$.client`"),
        ({**BODY, "repo_url": "not a url"}, "$.repo_url"),
        ({**BODY, "params": [1]}, "`$.params`"),
        (
            {
                **BODY,
                "plots": {"dvclive/plots/metrics/loss.tsv": {"data": [{"step": 0, "loss": "x"}]}},
            },
            "loss.tsv.data[0]",
        ),
        (
            {**BODY, "plots": {"dvclive/plots/images/a.png": {"image": "***"}}},
            "`$.plots.dvclive/plots/images/a.png.image` is not valid base64",
        ),
        # Refused anyway, and read again only to say which image: never a 500.
        (_raw('"plots": {"p": {"image": "!!!!"}}, "plots": 5'), "not valid base64"),
        (_raw('"plots": {"p": {"image": "!!!!", "image": 5}}'), "not valid base64"),
        (_raw('"plots": {"p": {"image": "!!!!"}}') + b" x", "not valid base64"),
        (_raw('"plots": {"p": {"image": "!!!!"}}, "e": ' + "[" * 100_000), "not valid base64"),
    ],
)
def test_bad_bodies_get_400_naming_the_field(
    shared_server: Server, shared_alice: User, body: object, fragment: str
) -> None:
    server, alice = shared_server, shared_alice
    resp = post(server, body, alice.token)
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert fragment in detail
    assert "\n" not in detail


def test_a_strangers_bad_body_is_refused_as_a_strangers(
    shared_server: Server, shared_alice: User
) -> None:
    # What is wrong with a body is told only to someone allowed to post one.
    server = shared_server
    for body in (b"{not json", {**BODY, "step": "three"}):
        resp = post(server, body, "lst_made_up")
        assert resp.status_code == 401, resp.text
        assert "JSON" not in resp.json()["detail"] and "step" not in resp.json()["detail"]
        assert post(server, body, None).status_code == 401
        assert post(server, body, shared_alice.token).status_code == 400


@pytest.mark.http_only
def test_over_30_mb_is_413_with_the_limit(shared_server: Server, shared_alice: User) -> None:
    server, alice = shared_server, shared_alice
    big = b'{"type": "data", "pad": "' + b"x" * 30_000_001 + b'"}'
    resp = post(server, big, alice.token)
    assert resp.status_code == 413
    assert "30,000,000" in resp.json()["detail"]


def test_the_api_own_endpoints_take_at_most_1_mib_only_live_and_pushes_more(
    shared_server: Server, shared_alice: User
) -> None:
    server, alice = shared_server, shared_alice
    padding = "x" * (1 << 20)
    # A stranger's 1 MiB login (the endpoint answers anyone) is refused unread, in a sentence.
    login = httpx.post(
        f"{server.url}/api/auth/login",
        json={"username": "alice", "password": padding},
        timeout=30,
    )
    assert login.status_code == 413
    assert login.json()["detail"] == (
        "The request body is over the 1,048,576-byte limit; send smaller requests."
    )
    made = alice.client.post("/api/projects", json={"name": "p" * 10, "repo_url": padding})
    assert made.status_code == 413
    # DVC's push notification of many refs, and a live event, may be larger.
    refs = [f"refs/exps/aa/{'b' * 38}/run-{i:06d}" for i in range(30_000)]
    pushed = alice.client.post(
        "/webhook/dvc",
        json={"repo_url": "https://github.com/acme/big-push", "refs": {"pushed": refs}},
        headers={"Authorization": f"token {alice.token}"},
        timeout=60,
    )
    assert len(pushed.request.content) > 1 << 20
    assert pushed.status_code == 200, pushed.text
    body = fixture_bodies("dvclive_basic")[0]
    big_params = {"dvclive/params.yaml": {f"p{i}": "v" * 100 for i in range(12_000)}}
    live = alice.live({**body, "name": "big-params", "params": big_params})
    assert len(live.request.content) > 1 << 20
    assert live.status_code == 200, live.text


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.http_only
def test_a_request_that_arrives_too_slowly_is_408_but_idle_and_streaming_connections_stay(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(LIVESTUDIO_REQUEST_TIMEOUT="1", LIVESTUDIO_HEARTBEAT="0.3")
    alice = server.add_user("alice")
    host, port = server.url.removeprefix("http://").split(":")
    slow = [
        b"",  # connects and sends nothing
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        # a body that stops half-way (100 bytes get 1 s + 100/16384 s)
        b"POST /api/live HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        + f"Authorization: token {alice.token}\r\n\r\n{{".encode(),
    ]
    for sent in slow:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(sent)
            started = time.monotonic()
            answer = _read_until_closed(sock)
            assert 0.8 < time.monotonic() - started < 8, sent
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"send a request's headers within 1 s" in answer
        # As every answer: JSON with `detail`, not cached, not sniffed (it was plain text).
        head, _, body = answer.partition(b"\r\n\r\n")
        assert json.loads(body)["detail"].startswith("Request timeout: send a request's")
        assert b"application/json" in head and b"no-store" in head and b"nosniff" in head
    # A request answered before its body arrives has its connection closed after the
    # answer: the body it declared is neither waited for nor read and thrown away.
    early = [
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{",
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{",
    ]
    for sent in early:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(sent)
            answer = _read_until_closed(sock)
        assert answer.startswith((b"HTTP/1.1 413 ", b"HTTP/1.1 200 ")), answer
        assert b"408" not in answer
    # A second request begun in the first one's bytes is timed too.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n")
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in answer, answer
    # A kept-alive connection may idle between requests far longer than that.
    with httpx.Client(base_url=server.url, headers=dict(alice.client.headers)) as client:
        assert client.get("/api/projects").status_code == 200
        time.sleep(1.6)
        assert client.get("/api/projects").status_code == 200
    # And an answer may take as long as it takes: an event stream lives on.
    stream = Listener(server.url, "/api/events", dict(alice.client.headers))
    try:
        time.sleep(2.5)
        assert not stream.ended.is_set() and stream.comments >= 4
    finally:
        stream.close()


def _answer_before_any_body(server: Server, path: str, headers: list[str]) -> bytes:
    """Send a request's head only and read what comes back (a 10 s wait: no answer)."""
    host, port = server.url.removeprefix("http://").split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join([*head, *headers]) + "\r\n\r\n").encode())
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b"(no answer: the server waits for the body)"


@pytest.mark.parametrize(
    ("path", "length"),
    [
        ("/api/live", "Transfer-Encoding: chunked"),  # no length: could be any size
        ("/webhook/dvc", "Content-Length: 30000000"),
        ("/webhook/dvc", "Transfer-Encoding: chunked"),
    ],
)
@pytest.mark.http_only
def test_a_strangers_big_body_is_refused_before_it_is_read(
    shared_server: Server, path: str, length: str
) -> None:
    """A stranger's 30 MB must not cost reading and decoding it before the 401."""
    for auth in ["Authorization: token lst_made_up"], []:
        answer = _answer_before_any_body(shared_server, path, [length, *auth])
        assert answer.startswith(b"HTTP/1.1 401"), answer[:80]


def test_request_headers_are_bounded(shared_server: Server) -> None:
    """httptools sets no limit: one 50 MB header held 72 MB of the server's memory."""
    host, port = shared_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(ConnectionError):  # refused before it was all sent
            for _ in range(64):
                sock.sendall(b"a" * 65536)
        try:
            answer = sock.recv(200)
        except ConnectionResetError:  # the kernel may drop the 431 with the unread bytes
            answer = b"HTTP/1.1 431 (reset)"
    assert answer.startswith(b"HTTP/1.1 431"), answer  # without a bound: no answer, a timeout
    # A chunked body may end in trailer fields, which httptools keeps like headers.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"5\r\nhello\r\n0\r\n")
        with contextlib.suppress(ConnectionError):
            for i in range(512):
                sock.sendall(b"X-Trailer-%d: " % i + b"t" * 8192 + b"\r\n")
        got = b""
        try:  # the app may answer 404 first; then the server must cut the trailers off
            while chunk := sock.recv(65536):
                got += chunk
            closed = True
        except ConnectionResetError:
            closed = True
        except TimeoutError:  # without a bound: it keeps reading whatever comes
            closed = False
    assert closed, got[:300]
    # Long but reasonable headers pass, and the server is fine.
    ok = httpx.get(f"{shared_server.url}/health", headers={"X-Ok": "b" * 30000})
    assert ok.status_code == 200


def test_too_many_plots_or_an_image_over_10_mb_is_413(
    shared_server: Server, shared_alice: User
) -> None:
    """PROTOCOL.md: the clients' own limits, enforced with 413 and a sentence."""
    server, alice = shared_server, shared_alice
    many = {f"dvclive/plots/metrics/m{i}.tsv": {"data": []} for i in range(201)}
    # The clients measure the base64 text; so does the server.
    huge = {"dvclive/plots/images/big.png": {"image": "A" * (10_000_000 + 4)}}
    for plots, words in ((many, "at most 200"), (huge, "10,000,000-byte limit")):
        body = {**BODY, "plots": plots}
        resp = post(server, body, alice.token)
        assert resp.status_code == 413, resp.text
        assert words in resp.json()["detail"] and "\n" not in resp.json()["detail"]
        stranger = post(server, body, "lst_made_up")  # a stranger learns nothing of it
        assert stranger.status_code == 401 and "plot" not in stranger.json()["detail"].lower()


def test_other_users_projects_and_experiments_do_not_exist_for_them(
    server: Server, alice: User
) -> None:
    experiment_id = alice.live(BODY).json()["experiment_id"]
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    bob = server.add_user("bob")
    assert bob.client.get("/api/projects").json() == []
    for path in (
        f"/api/projects/{project_id}/experiments",
        f"/api/experiments/{experiment_id}",
        f"/api/experiments/{experiment_id}/series",
    ):
        resp = bob.client.get(path)
        assert resp.status_code == 404, path
        assert "does not exist" in resp.json()["detail"]
    assert bob.client.delete(f"/api/experiments/{experiment_id}").status_code == 404
    # Bob posting the same identity makes his own experiment, never touching Alice's.
    bob_id = bob.live({**BODY, "step": 7}).json()["experiment_id"]
    assert bob_id != experiment_id
    assert alice.client.get(f"/api/experiments/{experiment_id}").json()["step"] == 0
    # Once Alice invites Bob and he accepts, his runs show in her project too.
    invited = alice.client.post(f"/api/projects/{project_id}/members", json={"username": "bob"})
    assert invited.status_code == 201 and invited.json()["invited"] == ["bob"]
    assert len(alice.client.get(f"/api/projects/{project_id}/experiments").json()) == 1
    joined = bob.client.post(f"/api/invitations/{project_id}/accept")
    assert joined.status_code == 200 and joined.json()["experiments"] == 2


def test_read_api_needs_credentials(shared_server: Server) -> None:
    server = shared_server
    resp = httpx.get(f"{server.url}/api/projects")
    assert resp.status_code == 401 and "Authorization" in resp.json()["detail"]
    resp = httpx.get(f"{server.url}/api/projects", headers={"Authorization": "Bearer lss_nope"})
    assert resp.status_code == 401


def test_garbage_never_gives_500(shared_server: Server, shared_alice: User) -> None:
    server, alice = shared_server, shared_alice
    for raw in (b"", b"null", b"1", b'"x"', b"{}", b'{"type": null}', b"\xff\xfe", b"{" * 5000):
        resp = post(server, raw, alice.token)
        assert resp.status_code == 400, (raw[:20], resp.text)
    odd = alice.client.get("/api/experiments/1/series?max_points=1")
    assert odd.status_code in (400, 404)
    assert alice.client.get("/api/projects/abc/experiments").status_code in (400, 404)
    assert alice.client.post("/api/projects", json={"name": "x"}).status_code == 400
    assert (
        alice.client.post("/api/projects", json={"name": "x", "repo_url": "?"}).status_code == 400
    )


def test_a_deeply_nested_body_is_a_400_on_every_endpoint_not_a_traceback(
    server: Server, alice: User
) -> None:
    """Litestar's JSON decoding ran out of stack on ``[[[…`` 1,000 deep: a 500 and a
    traceback in the log for a 2 KB post, a stranger's login included."""
    deep = b'{"username": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    session = alice.client.headers["Authorization"]
    for method, path, authorization in (
        ("POST", "/api/auth/login", None),
        ("POST", "/api/device-login", None),
        ("POST", "/api/token", None),
        ("POST", "/webhook/dvc", f"token {alice.token}"),
        ("POST", "/api/live/finish?since=0", f"token {alice.token}"),
        ("POST", "/api/projects", session),
        ("POST", "/api/watches", session),
        ("PUT", "/api/watches/1", session),
        ("POST", "/api/user/keys", session),
        ("POST", "/api/device-login/approve", session),
    ):
        headers = {"Authorization": authorization} if authorization else {}
        resp = httpx.request(method, f"{server.url}{path}", content=deep, headers=headers)
        assert resp.status_code == 400, (path, resp.text)
        assert "nested too deeply" in resp.json()["detail"] or path.startswith("/api/live/")
    assert server.log is not None
    assert "Traceback" not in server.log.read_text()


def test_only_a_body_too_deep_to_decode_is_called_one_a_bug_of_ours_stays_a_500() -> None:
    from litestar.serialization import decode_json

    from backend.errors import _while_decoding

    def runaway(depth: int) -> int:
        return runaway(depth + 1)

    for raising, deep in ((lambda: decode_json(b"[" * 100_000), True), (lambda: runaway(0), False)):
        with pytest.raises(RecursionError) as raised:
            raising()
        assert _while_decoding(raised.value) is deep


def test_cli_errors_are_one_sentence(server: Server) -> None:
    result = run_cli("token", "create", "nobody", db=server.database)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no user named" in result.stderr
    result = run_cli("user", "add", "x", "--password-stdin", db=server.database, stdin="short\n")
    assert result.returncode == 1 and "at least 8" in result.stderr
    first = run_cli("user", "add", "Carol", "--password-stdin", db=server.database, stdin="p" * 9)
    assert first.returncode == 0, first.stderr
    again = run_cli("user", "add", "CAROL", "--password-stdin", db=server.database, stdin="p" * 9)
    assert again.returncode == 1 and "already exists (usernames ignore case)" in again.stderr
    # A command of several actions without one, or its options before the action: a line.
    early = run_cli("user", db=server.database)  # (`livestudio user --db PATH`)
    assert early.returncode == 2 and early.stderr.count("\n") == 1
    assert "give the options after the action (`livestudio user ACTION --" in early.stderr
    bare = subprocess.run(
        [sys.executable, "-m", "cli.main", "user"], capture_output=True, text=True, timeout=60
    )
    assert bare.returncode == 2 and bare.stderr.count("\n") == 1, bare.stderr
    assert "say what to do: `livestudio user ACTION`, ACTION one of add, list," in bare.stderr
    # A name ending in a newline passed the check ("$" matches before a final newline).
    for name in ("eve\n", "eve\r", " eve"):
        made = run_cli("user", "add", name, "--password-stdin", db=server.database, stdin="p" * 9)
        assert made.returncode == 1 and "A username is 1-64" in made.stderr, repr(name)


def test_add_key_of_a_file_that_is_no_key_is_one_line(
    server: Server, alice: User, tmp_path
) -> None:
    picture = tmp_path / "a.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 100)
    huge = tmp_path / "huge.pub"
    huge.write_text("ssh-ed25519 " + "A" * 100_000)
    for key_file in (picture, huge, "/dev/zero"):
        done = run_cli("user", "add-key", "alice", str(key_file), db=server.database)
        assert done.returncode == 1 and "is no public key file" in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1
    assert "has no SSH keys" in run_cli("user", "keys", "alice", db=server.database).stdout


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])  # stdin: surrogates, or a decode error
def test_a_password_that_is_not_utf8_text_is_refused_in_one_line(
    server: Server, alice: User, tmp_path, locale: str
) -> None:
    import os

    from tests.conftest import db_flags

    env = {**os.environ, "LC_ALL": locale, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("PYTHONUTF8", None)
    for command in (
        ["user", "add", "zed", "--password-stdin", *db_flags(server.database)],
        ["user", "password", "alice", "--password-stdin", *db_flags(server.database)],
        ["login", "--server", server.url, "--username", "alice", "--password-stdin"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *command],
            input="pässword1234\n".encode("latin-1"),
            capture_output=True,
            env=env,
            timeout=60,
        )
        stderr = done.stderr.decode()
        assert done.returncode == 1 and "not UTF-8 text" in stderr, (command, stderr)
        assert stderr.count("\n") == 1
    assert "zed" not in run_cli("user", "list", db=server.database).stdout
    server.login("alice")  # her password is unchanged


@pytest.mark.sqlite_only  # the bad database is a SQLite path
def test_serve_refuses_a_taken_port_and_a_bad_database(server: Server, tmp_path) -> None:
    import subprocess
    import sys

    taken = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(server.port),
            "--db",
            str(tmp_path / "x.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert taken.returncode == 1 and "Cannot listen on" in taken.stderr
    assert "Traceback" not in taken.stderr
    (tmp_path / "file").write_text("not a folder")
    bad = run_cli(
        "user", "add", "x", "--password-stdin", db=tmp_path / "file" / "x.db", stdin="p" * 9 + "\n"
    )
    assert bad.returncode == 1 and "Cannot use the database" in bad.stderr


@pytest.mark.parametrize(
    ("flags", "env", "said"),
    [
        (["--port", "99999"], {}, "LIVESTUDIO_PORT (--port) is 99999; give a port from 1 to 65535"),
        (["--ssh-port", "-1"], {}, "give a port from 1 to 65535, or 0 for none"),
        (["--stale-after", "-5"], {}, "LIVESTUDIO_STALE_AFTER (--stale-after) is -5"),
        ([], {"LIVESTUDIO_MAX_BODY": "-1"}, "LIVESTUDIO_MAX_BODY is -1; give at least 1024 bytes"),
        ([], {"LIVESTUDIO_SWEEP_INTERVAL": "0"}, "give 0.05 to 3600 seconds"),
        ([], {"LIVESTUDIO_HEARTBEAT": "nan"}, "LIVESTUDIO_HEARTBEAT is nan"),
        # A microsecond's heartbeat kept an idle server busy; infinities were taken.
        ([], {"LIVESTUDIO_HEARTBEAT": "0.000001"}, "give 0.1 to 3600 seconds"),
        ([], {"LIVESTUDIO_HEARTBEAT": "inf"}, "LIVESTUDIO_HEARTBEAT is inf"),
        (["--stale-after", "1e400"], {}, "is inf; give a number of seconds above 0, at most"),
        ([], {"LIVESTUDIO_SESSION_DAYS": "1e9"}, "give a number of days above 0, at most 3650"),
        # A word where a number goes says what to give.
        (
            [],
            {"LIVESTUDIO_STALE_AFTER": "10m"},
            "LIVESTUDIO_STALE_AFTER (--stale-after)='10m' is not a number; give a number of",
        ),
        ([], {"LIVESTUDIO_PORT": "abc"}, "='abc' is not a whole number; give a port from 1"),
        (["--port", "18999", "--ssh-port", "18999"], {}, "give SSH a port of its own"),
        ([], {"LIVESTUDIO_PUBLIC_URL": "studio.example.com"}, "give one like https://studio"),
        ([], {"LIVESTUDIO_PUBLIC_URL": "https://h/studio"}, "(no path)"),
        # A traceback each (redis-py's parsing), and a database index dropped silently.
        ([], {"LIVESTUDIO_REDIS_URL": "redis://127.0.0.1:99999/1"}, "Port out of range"),
        ([], {"LIVESTUDIO_REDIS_URL": "redis://127.0.0.1:abc/0"}, "could not be cast"),
        ([], {"LIVESTUDIO_REDIS_URL": "redis://[::1/0"}, "Invalid IPv6 URL"),
        ([], {"LIVESTUDIO_REDIS_URL": "redis://h:1/0?socket_timeout=x"}, "'socket_timeout'"),
        ([], {"LIVESTUDIO_REDIS_URL": "redis://h:6379/abc"}, "database 'abc' is not a number"),
    ],
)
def test_serve_refuses_settings_out_of_range_in_one_sentence(
    tmp_path, flags: list[str], env: dict[str, str], said: str
) -> None:
    # A negative --stale-after would have stopped every running experiment at once.
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--db", str(tmp_path / "x.db"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert done.returncode == 1, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened


def test_a_redis_url_that_redis_refuses_stops_serve_before_it_starts(tmp_path) -> None:
    """A database index Redis does not have left the server degraded for good, with only a
    warning in its log."""
    import os
    import subprocess
    import sys

    redis = os.environ.get("LIVESTUDIO_TEST_REDIS", "redis://127.0.0.1:6379/0")
    wrong = redis.rsplit("/", 1)[0] + "/99"
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--db", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LIVESTUDIO_REDIS_URL": wrong, "LIVESTUDIO_PORT": str(free_port())},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "refuses this server: DB index is out of range" in done.stderr, done.stderr


def test_a_database_url_of_another_kind_is_named_without_its_password() -> None:
    from backend.settings import Settings

    with pytest.raises(ValueError, match="'mysql://db/z' is not sqlite:///PATH") as refused:
        Settings.from_env(environ={"LIVESTUDIO_DATABASE_URL": "mysql://me:secret@db/z"})
    assert "secret" not in str(refused.value)


def test_a_postgresql_url_naming_no_database_is_refused(monkeypatch) -> None:
    """A bare postgresql:// went to libpq's default database (the OS user's) and made
    livestudio's tables there."""
    from backend.settings import Settings

    monkeypatch.delenv("PGDATABASE", raising=False)
    for url in ("postgresql://", "postgresql://postgres@127.0.0.1:5432"):
        with pytest.raises(ValueError, match="names no database; give postgresql://"):
            Settings.from_env(environ={"LIVESTUDIO_DATABASE_URL": url})
    named = Settings.from_env(environ={"LIVESTUDIO_DATABASE_URL": "postgresql://h/livestudio"})
    assert named.database_url == "postgresql://h/livestudio"


@pytest.mark.http_only
def test_the_access_log_is_off_unless_asked_for_and_then_shows_refused_posts(
    make_server: Callable[..., Server],
) -> None:
    quiet = make_server()
    assert post(quiet, BODY, "lst_wrong").status_code == 401
    logged = make_server(LIVESTUDIO_ACCESS_LOG="1")
    assert post(logged, BODY, "lst_wrong").status_code == 401
    deadline = time.monotonic() + 10
    while "POST /api/live" not in logged.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(x for x in logged.log.read_text().splitlines() if "POST /api/live" in x)
    assert "401" in line  # who was refused, and how: "why don't my runs show?"
    assert "POST /api/live" not in quiet.log.read_text()


def test_an_image_that_is_no_picture_is_left_out_and_the_step_kept(
    shared_server: Server, shared_alice: User
) -> None:
    # DVCLive may read an image while the next step's log_image rewrites it (empty, or cut
    # short): refusing the post lost the step's metrics with it.
    body = {
        **BODY,
        "name": "half-written",
        "metrics": {"m.json": {"data": {"acc": 0.75}}},
        "plots": {
            "dvclive/plots/images/a.png": {"image": ""},
            "dvclive/plots/images/b.png": {"image": "aGVsbG8="},
        },
    }
    resp = post(shared_server, body, shared_alice.token)
    assert resp.status_code == 200, resp.text
    experiment = resp.json()["experiment_id"]
    detail = shared_alice.client.get(f"/api/experiments/{experiment}").json()
    assert detail["metrics"]["acc"] == 0.75 and detail["images"] == []


def test_no_answer_may_be_cached_or_sniffed(server: Server, alice: User) -> None:
    """A token in a shared proxy's cache, a run's name read as HTML: every answer says
    no-store and nosniff, refusals and raw handlers included."""
    token = alice.client.post("/api/user/token")
    assert token.status_code in (200, 201), token.text
    answers = {
        "new token": token,
        "user": alice.client.get("/api/user"),
        "live": post(server, BODY, token.json()["token"]),
        "refused live": post(server, BODY, "lst_wrong"),
        "refused login": httpx.post(
            f"{server.url}/api/auth/login", json={"username": "alice", "password": "x" * 8}
        ),
        "unknown path": httpx.get(f"{server.url}/api/nothing-here"),
        "health": httpx.get(f"{server.url}/health"),
    }
    with alice.client.stream("GET", "/api/events", params={"heartbeat": 1}) as stream:
        answers["stream"] = stream
    assert answers["live"].status_code == 200 and answers["refused live"].status_code == 401
    for what, answer in answers.items():
        assert answer.headers.get("cache-control") == "no-store", what
        assert answer.headers.get("x-content-type-options") == "nosniff", what


@pytest.mark.http_only
def _own_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # (a UDP connect sends nothing)
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.http_only
def test_one_address_holds_a_bounded_number_of_connections(
    make_server: Callable[..., Server],
) -> None:
    """Idle connections from one host used up the server's file descriptors, and every
    request from anywhere failed while they were held."""
    server = make_server(LIVESTUDIO_CONNECTIONS_PER_ADDRESS="5", LIVESTUDIO_HOST="0.0.0.0")
    host, port = server.url.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(5)]
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sixth:
            sixth.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = _read_until_closed(sixth)
            except ConnectionResetError:  # (closed with the request unread)
                answer = b""
            assert answer == b""  # closed before a byte was read: no answer
        # Every loopback address is this one host: 127.0.0.2 is refused too (each had a
        # share of its own, and a local program could hold any number of them).
        looped = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with pytest.raises(httpx.TransportError):
            looped.get(f"{server.url}/health")
        # Another address is served meanwhile: this machine's own, if it has one.
        mine = _own_address()
        if mine is None:
            print("no address but loopback here: another host's share is not tried")
        else:
            assert httpx.get(f"http://{mine}:{port}/health").status_code == 200
        held.pop().close()
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/health").status_code == 200  # a place came free
        # A WebSocket upgrade (no such route) is an ordinary request: its place comes free
        # too (uvicorn's upgrade never gave it back, and 256 locked the address out).
        upgrade = (
            b"GET /api/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(upgrade)
                assert sock.recv(12).startswith(b"HTTP/1.1 ")
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        for sock in held:
            sock.close()
    refused = run_cli("serve", db=server.database, env={"LIVESTUDIO_CONNECTIONS_PER_ADDRESS": "-1"})
    assert refused.returncode != 0 and "0 for no limit" in refused.stderr


def test_what_another_server_says_is_printed_escaped_on_one_line() -> None:
    """`livestudio run` pointed at something else printed its `detail` raw: colours, a
    window title and a forged second line reached the terminal."""
    from cli.remote import refused

    answer = httpx.Response(
        400, json={"detail": "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07\nSecond line: run `x`"}
    )
    said = str(refused("http://127.0.0.1:9", answer))
    assert "\x1b" not in said and "\n" not in said and "\x07" not in said
    assert said.startswith("\\x1b[31mRED")


def test_a_login_session_where_an_access_token_belongs_is_told_so(
    shared_server: Server, shared_alice: User
) -> None:
    """A valid session sent as DVC_STUDIO_TOKEN was told its token was "revoked", which
    sent its owner off regenerating tokens that were fine."""
    server, alice = shared_server, shared_alice
    session = alice.client.headers["Authorization"].split()[1]
    assert session.startswith("lss_")
    headers = {"Authorization": f"token {session}"}
    for answer in (
        post(server, BODY, session),
        httpx.get(f"{server.url}/api/live", headers=headers),
        httpx.post(f"{server.url}/api/live/finish?since=0", json=BODY, headers=headers),
        httpx.post(
            f"{server.url}/webhook/dvc",
            json={"repo_url": BODY["repo_url"], "client": "dvc", "refs": {}},
            headers=headers,
        ),
    ):
        assert answer.status_code == 401, answer.text
        detail = answer.json()["detail"]
        assert "login session" in detail and "lst_" in detail and "revoked" not in detail
    assert alice.client.get("/api/projects").status_code == 200  # the session itself is fine


def test_a_dead_credential_on_a_read_is_told_what_mends_it(
    shared_server: Server, shared_alice: User
) -> None:
    """A revoked access token (a script's, CI's) was told to "log in again", which gives it
    nothing; an ended session is."""
    server = shared_server
    for credential, said in (
        ("lst_made_up_or_revoked", "create a new one with `livestudio token create`"),
        ("lss_made_up_or_ended", "Your session has ended or expired; log in again."),
    ):
        answer = httpx.get(
            f"{server.url}/api/projects", headers={"Authorization": f"Bearer {credential}"}
        )
        assert answer.status_code == 401 and said in answer.json()["detail"], answer.text

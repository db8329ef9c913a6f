"""Operations endpoints on a real server: /health for load balancers, /metrics for Prometheus."""

from __future__ import annotations

import http.client
import re
import time

import httpx
import pytest

from tests.backend.sse import Listener
from tests.backend.test_access_model import scoped_token
from tests.conftest import ENGINE, Server, fixture_bodies, run_cli

BODY = fixture_bodies("dvclive_basic")[1]


def sample(text: str, name: str) -> float:
    """The value of one sample line (``name{labels} value``) of a Prometheus exposition."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{name} not in the exposition"
    return float(match.group(1))


def test_health_names_the_engine_and_answers_without_credentials(server: Server) -> None:
    resp = httpx.get(f"{server.url}/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "engine": ENGINE, "database": "ok"}


def test_metrics_count_what_happened_and_only_admins_read_them(server: Server) -> None:
    admin = server.add_user("alice")  # the first user is the admin
    member = server.add_user("bob")
    assert admin.live(BODY).status_code == 200
    assert admin.live({**BODY, "step": "x"}).status_code == 400
    assert httpx.post(f"{server.url}/api/live", json=BODY).status_code == 401
    stream = Listener(server.url, "/api/events", dict(admin.client.headers))
    try:
        for headers in ({}, {"Authorization": "Bearer lst_forged"}):
            assert httpx.get(f"{server.url}/metrics", headers=headers).status_code == 401
        refused = member.client.get("/metrics")
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
        models = scoped_token(server, "alice", {"MODELS"})
        wrong_scope = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {models}"}
        )
        assert wrong_scope.status_code == 403
        by_token = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {admin.token}"}
        )
        assert by_token.status_code == 200
        assert by_token.headers["content-type"].startswith("text/plain")
        text = admin.client.get("/metrics").text
    finally:
        stream.close()
    assert sample(text, 'livestudio_posts_total{status="200"}') == 1
    assert sample(text, 'livestudio_posts_total{status="400"}') == 1
    assert sample(text, 'livestudio_posts_total{status="401"}') == 1
    assert sample(text, "livestudio_stream_subscribers") == 1
    assert sample(text, "livestudio_commit_jobs_count") >= 3  # users, tokens, the post
    assert sample(text, "livestudio_commit_seconds_count") >= 3
    assert "process_resident_memory_bytes" in text


@pytest.mark.http_only
def test_an_idle_kept_alive_connection_outlives_dvcs_five_second_poll(server: Server) -> None:
    """`dvc studio login` polls every 5 s on one kept-alive connection and does not retry a
    POST: a server closing idle connections after 5 s sometimes closed it just as the
    next poll went out ("Connection reset by peer", seen in CI)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for wait in (0.0, 6.0):
            time.sleep(wait)
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
    finally:
        conn.close()


def test_a_database_migrated_by_a_newer_livestudio_is_refused_by_every_command(
    server: Server,
) -> None:
    """A rollback after an upgrade served and wrote a schema it did not know, and `db
    migrate` said it had "migrated" it from version 23 to 22."""
    from contextlib import closing

    from backend.db.connection import connect_sync
    from backend.db.migrations import MIGRATIONS

    server.add_user("alice")
    server.stop()
    newest = MIGRATIONS[-1][0]
    with closing(connect_sync(server.database)) as conn:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (newest + 1,))
        conn.execute("COMMIT")
    said = f"it is at schema version {newest + 1}, newer than this livestudio knows ({newest})"
    for command in (
        ("serve", "--port", str(server.port)),
        ("db", "migrate"),
        ("token", "create", "alice"),
        ("user", "list"),
    ):
        refused = run_cli(*command, db=server.database)
        assert refused.returncode == 1, (command, refused.stdout)
        assert said in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    with closing(connect_sync(server.database)) as conn:  # and nothing was written
        assert conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 1

"""Listing a project's experiments: the stored row encodings, joined by the database."""

from __future__ import annotations

import time
from contextlib import closing

from backend.db.connection import connect_sync
from backend.db.experiments import ROW_VERSION
from tests.conftest import Server, User, fixture_bodies

BODY = fixture_bodies("dvclive_basic")[1]


def listing(user: User, path: str = "/api/projects/1/experiments") -> list[dict[str, object]]:
    resp = user.client.get(path)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_rows_come_newest_first_and_rows_of_an_older_shape_are_rebuilt_in_place(
    server: Server, alice: User
) -> None:
    names = [f"run-{i:02d}" for i in range(12)]
    for name in names:
        assert alice.live({**BODY, "name": name}).status_code == 200
    assert alice.live({**BODY, "name": "run-03", "step": 7, "type": "data"}).status_code == 200
    done = {**BODY, "name": "run-05", "type": "done"}
    done.pop("step", None)
    assert alice.live(done).status_code == 200
    fresh = listing(alice)
    # Newest start first, whatever was posted since (run-03 and run-05 changed last).
    assert [row["name"] for row in fresh] == names[::-1]
    assert next(r for r in fresh if r["name"] == "run-03")["step"] == 7
    assert listing(alice, "/api/projects/1/experiments?status=completed") == [
        r for r in fresh if r["name"] == "run-05"
    ]

    # Rows stored in an older shape, or with no stored encoding, are rebuilt from their
    # columns: the listing is the same, in the same order (but for the step rate, which
    # is measured in the writer's memory and not kept in a column).
    with closing(connect_sync(server.database)) as conn:
        conn.execute("BEGIN")
        conn.execute("UPDATE experiments SET row_version = 0 WHERE name IN ('run-03', 'run-08')")
        conn.execute("UPDATE experiments SET row_json = NULL WHERE name = 'run-10'")
        conn.execute("COMMIT")

    def without_rate(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in row.items() if k != "steps_per_s"} for row in rows]

    rebuilt = listing(alice)
    assert without_rate(rebuilt) == without_rate(fresh)
    assert [r for r in rebuilt if r["name"] not in ("run-03", "run-08", "run-10")] == [
        r for r in fresh if r["name"] not in ("run-03", "run-08", "run-10")
    ]

    assert listing(alice, "/api/projects/1/experiments?status=failed") == []

    # A server starting after an upgrade stores such rows again, so listings stop
    # rebuilding them.
    server.stop()
    server.start()
    deadline = time.monotonic() + 20
    with closing(connect_sync(server.database)) as conn:
        while time.monotonic() < deadline:
            old = conn.execute(
                f"SELECT count(*) FROM experiments WHERE row_version != {ROW_VERSION}"
                " OR row_json IS NULL"
            ).fetchone()[0]
            if conn.in_transaction:  # PostgreSQL: a new snapshot sees the server's commits
                conn.execute("ROLLBACK")
            if old == 0:
                break
            time.sleep(0.1)
    assert old == 0
    assert without_rate(listing(alice)) == without_rate(fresh)

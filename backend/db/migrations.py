"""Numbered schema migrations, applied in order and recorded in ``schema_migrations``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from backend.db.connection import Conn, SchemaTooNew, is_postgres

Migration = str | Callable[[Conn], None]
"""SQL statements, or a step that needs Python (the same for both engines)."""


def rekey_git_suffix(conn: Conn) -> None:
    """Keys of repository URLs ending in an upper-case ``.GIT`` kept ``.git`` before
    version 22 (so ``Vision.GIT`` and ``vision.git`` were two projects): computed again
    from the stored URLs. A run whose corrected key would clash with another of the same
    poster, commit and name (the same run, split by the two spellings) moves too, renamed
    ``NAME (.GIT)`` so that both show; events follow a key only where every row that had
    it moved to the same new one."""
    from shared.repo_url import InvalidRepoUrl, repo_key

    moved: dict[str, set[str]] = {}
    for table in ("projects", "experiments"):
        rows = conn.execute(
            f"SELECT id, repo_url, repo_key FROM {table} WHERE repo_key LIKE '%.git'"
        ).fetchall()
        for row_id, url, old in rows:
            try:
                new = repo_key(url)
            except InvalidRepoUrl:
                new = old
            if new != old and table == "experiments" and _clashes(conn, row_id, new, ""):
                if _clashes(conn, row_id, new, " (.GIT)"):
                    new = old  # renamed, it would clash too: left as it is
                else:
                    conn.execute(
                        "UPDATE experiments SET name = substr(name, 1, 248) || ' (.GIT)',"
                        " row_version = 0 WHERE id = ?",
                        (row_id,),
                    )
            moved.setdefault(old, set()).add(new)
            if new != old:
                conn.execute(f"UPDATE {table} SET repo_key = ? WHERE id = ?", (new, row_id))
    for old, news in moved.items():
        if len(news) == 1 and (new := next(iter(news))) != old:
            conn.execute("UPDATE events SET repo_key = ? WHERE repo_key = ?", (new, old))


def scrub_repo_credentials(conn: Conn) -> None:
    """Repository URLs are kept without an ``http(s)`` user and password since version 23
    (``shared.repo_url.without_credentials``): the ones stored before lose them, in projects,
    runs (their stored API rows are encoded again) and the project and invitation events a
    stream replays."""
    import msgspec

    from shared.repo_url import without_credentials

    for table in ("projects", "experiments"):
        rows = conn.execute(
            f"SELECT id, repo_url FROM {table} WHERE repo_url LIKE '%://%@%'"
        ).fetchall()
        for row_id, url in rows:
            if (clean := without_credentials(url)) != url:
                extra = ", row_version = 0" if table == "experiments" else ""
                conn.execute(
                    f"UPDATE {table} SET repo_url = ?{extra} WHERE id = ?", (clean, row_id)
                )
    events = conn.execute(
        "SELECT id, data FROM events WHERE kind IN ('project', 'invitation')"
    ).fetchall()
    for event_id, data in events:
        payload = msgspec.json.decode(bytes(data))
        url = payload.get("repo_url") if isinstance(payload, dict) else None
        if isinstance(url, str) and (clean := without_credentials(url)) != url:
            payload["repo_url"] = clean
            conn.execute(
                "UPDATE events SET data = ? WHERE id = ?", (msgspec.json.encode(payload), event_id)
            )


NEVER_REUSED = ("tokens", "ssh_keys", "watches")
"""Tables whose ids come from ``id_high_water`` since version 24, as runs and projects do."""


def start_id_counters(conn: Conn) -> None:
    """Tokens, SSH keys and watches take ids never given out before since version 24: a
    rowid was reused once the newest row was deleted, and a TUI still listing the old token
    revoked the new one that took its id. Each counter starts past every id given out so
    far: the newest row's, or the engine's own record, which a deleted newest row leaves
    behind (SQLite's ``sqlite_sequence`` for an AUTOINCREMENT table, PostgreSQL's identity
    sequence)."""
    for table in NEVER_REUSED:
        given = [conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0]]
        if is_postgres(conn):
            sequence = "SELECT pg_sequence_last_value(pg_get_serial_sequence(?, 'id'))"
            given.append(conn.execute(sequence, (table,)).fetchone()[0])
        else:
            recorded = "SELECT seq FROM sqlite_sequence WHERE name = ?"
            given += [row[0] for row in conn.execute(recorded, (table,)).fetchall()]
        start = max((int(g) for g in given if g is not None), default=0)
        conn.execute("INSERT INTO id_high_water (name, id) VALUES (?, ?)", (table, start))


def _clashes(conn: Conn, row_id: int, key: str, suffix: str) -> bool:
    """Whether the run, re-keyed to ``key`` (and its name given ``suffix``), would be a
    second run of its poster's with the same commit and name."""
    return (
        conn.execute(
            "SELECT 1 FROM experiments o, experiments e WHERE e.id = ?"
            " AND o.poster_id = e.poster_id AND o.repo_key = ?"
            " AND o.baseline_sha = e.baseline_sha"
            " AND o.name = substr(e.name, 1, ?) || ?",
            (row_id, key, 248 if suffix else 255, suffix),
        ).fetchone()
        is not None
    )


MIGRATIONS: tuple[tuple[int, Migration], ...] = (
    (
        1,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash BLOB NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used_at REAL NOT NULL
        );
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('profile', 'client')),
            name TEXT NOT NULL,
            token_hash BLOB NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scopes TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        CREATE UNIQUE INDEX tokens_one_profile ON tokens(user_id) WHERE kind = 'profile';
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            repo_url TEXT NOT NULL,
            repo_key TEXT NOT NULL,
            subdir TEXT,
            owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX projects_repo ON projects(repo_key);
        CREATE TABLE project_members (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (project_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX project_members_user ON project_members(user_id);
        CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            poster_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            repo_key TEXT NOT NULL,
            repo_url TEXT NOT NULL,
            baseline_sha TEXT NOT NULL,
            name TEXT NOT NULL,
            client TEXT NOT NULL,
            status TEXT NOT NULL,
            message TEXT,
            subdir TEXT,
            experiment_rev TEXT,
            step INTEGER,
            done_step INTEGER,
            metrics_step INTEGER,
            started_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            pushed INTEGER NOT NULL DEFAULT 0,
            errors TEXT NOT NULL DEFAULT '[]',
            machine TEXT,
            params TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}',
            UNIQUE (poster_id, repo_key, baseline_sha, name)
        );
        CREATE INDEX experiments_repo ON experiments(repo_key, poster_id);
        CREATE INDEX experiments_running ON experiments(updated_at) WHERE status = 'running';
        CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            UNIQUE (experiment_id, name)
        );
        -- value NULL is a stored NaN: SQLite turns NaN into NULL on the way in.
        CREATE TABLE points (
            series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            value REAL,
            arrived_at REAL NOT NULL,
            PRIMARY KEY (series_id, step)
        ) WITHOUT ROWID;
        CREATE TABLE images (
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            step INTEGER,
            png BLOB NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (experiment_id, path)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            kind TEXT NOT NULL,
            repo_key TEXT,
            subdir TEXT,
            poster_id INTEGER,
            project_id INTEGER,
            member_ids TEXT,
            data BLOB NOT NULL
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE device_logins (
            id INTEGER PRIMARY KEY,
            device_code_hash BLOB NOT NULL UNIQUE,
            user_code TEXT NOT NULL UNIQUE,
            client_name TEXT NOT NULL,
            token_name TEXT NOT NULL,
            scopes TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            approved_by INTEGER REFERENCES users(id) ON DELETE CASCADE
        );
        CREATE TABLE failed_approvals (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            at REAL NOT NULL
        );
        CREATE INDEX failed_approvals_user ON failed_approvals(user_id, at);
        """,
    ),
    (
        3,
        """
        -- Per-block summaries of series (256 steps a block) so that downsampling a long
        -- series reads a few thousand rows instead of scanning a million. Written by the
        -- writer when a block is complete; empty for series created before this version
        -- until their next point (reads fall back to scanning, as before).
        CREATE TABLE point_blocks (
            series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
            block INTEGER NOT NULL,
            min_step INTEGER,
            min_value REAL,
            max_step INTEGER,
            max_value REAL,
            nan_step INTEGER,
            PRIMARY KEY (series_id, block)
        ) WITHOUT ROWID;
        """,
    ),
    (
        4,
        """
        -- The row as the API shows it, encoded once per write, so listing a large project
        -- is reading blobs rather than rebuilding every row. NULL for rows written before
        -- this version until their next write (they are built on the fly).
        ALTER TABLE experiments ADD COLUMN row_json BLOB;
        """,
    ),
    (
        5,
        """
        -- Fewer pages written per commit on the ingestion path: the running-experiments
        -- index no longer holds updated_at (rewritten on every post), and event ids come
        -- from the rowid (only the oldest events are ever deleted, so ids keep growing)
        -- instead of AUTOINCREMENT's extra sqlite_sequence write.
        DROP INDEX experiments_running;
        CREATE INDEX experiments_running ON experiments(status) WHERE status = 'running';
        CREATE TABLE events_v5 (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            kind TEXT NOT NULL,
            repo_key TEXT,
            subdir TEXT,
            poster_id INTEGER,
            project_id INTEGER,
            member_ids TEXT,
            data BLOB NOT NULL
        );
        INSERT INTO events_v5 SELECT * FROM events;
        DROP TABLE events;
        ALTER TABLE events_v5 RENAME TO events;
        """,
    ),
    (
        6,
        """
        -- The points of small posts (one step of a few series, what DVCLive sends every
        -- step) are appended here first: all of a commit's rows land on the table's last
        -- page, where filing them into `points` one by one would write a page per series.
        -- The writer files them in bulk (by size, on a timer, and before any read of a
        -- series), so `points` is exact whenever it is read.
        CREATE TABLE points_log (
            series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            value REAL,
            arrived_at REAL NOT NULL
        );
        """,
    ),
    (
        7,
        """
        -- Membership is consent: adding someone to a project invites them, and nothing of
        -- theirs shows there until they accept (the row then moves to project_members).
        CREATE TABLE project_invitations (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            invited_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (project_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX project_invitations_user ON project_invitations(user_id);
        -- The highest id ever given out per table: rowids alone are reused once the newest
        -- row is deleted, and a stream client or a script would confuse two runs.
        CREATE TABLE id_high_water (
            name TEXT PRIMARY KEY,
            id INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO id_high_water (name, id) SELECT 'experiments', COALESCE(MAX(id), 0)
            FROM experiments;
        INSERT INTO id_high_water (name, id) SELECT 'projects', COALESCE(MAX(id), 0)
            FROM projects;
        """,
    ),
    (
        8,
        """
        -- The newest event id when the user joined: a stream replaying older events
        -- (Last-Event-ID) shows a member nothing from before they joined, and nothing a
        -- poster sent before they joined. 0 for members from before this version.
        ALTER TABLE project_members ADD COLUMN since_event INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        9,
        """
        -- Public keys that log their user in to the TUI served over SSH.
        CREATE TABLE ssh_keys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL UNIQUE,
            public_key TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        CREATE INDEX ssh_keys_user ON ssh_keys(user_id);
        """,
    ),
    (
        10,
        """
        -- Login sessions made for TUIs served over SSH: they end with their SSH session,
        -- and any left by a server that was killed are ended when it starts again.
        CREATE TABLE ssh_sessions (
            session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE
        );
        """,
    ),
    (
        11,
        """
        -- Watches: conditions the server evaluates as data arrives, for one experiment
        -- or every experiment of a project. Each firing is recorded once per dedupe key
        -- (the UNIQUE below), so a condition that stays true never fires again, and the
        -- webhook attempts of each firing are logged for the TUI to show.
        -- AUTOINCREMENT: a new watch never takes a deleted one's id (and its firings).
        CREATE TABLE watches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            metric TEXT,
            op TEXT,
            threshold REAL,
            statuses TEXT NOT NULL DEFAULT '',
            factor REAL,
            webhook_url TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX watches_user ON watches(user_id);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            watch_id INTEGER REFERENCES watches(id) ON DELETE SET NULL,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            experiment_id INTEGER NOT NULL,
            project_id INTEGER,
            dedupe TEXT NOT NULL,
            fired_at REAL NOT NULL,
            experiment_name TEXT NOT NULL,
            title TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        -- What has fired, kept when old alerts are pruned: a firing happens once, ever.
        CREATE TABLE watch_firings (
            watch_id INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
            experiment_id INTEGER NOT NULL,
            dedupe TEXT NOT NULL,
            PRIMARY KEY (watch_id, experiment_id, dedupe)
        ) WITHOUT ROWID;
        CREATE INDEX alerts_user ON alerts(user_id, id);
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            at REAL NOT NULL,
            status INTEGER,
            error TEXT
        );
        CREATE INDEX webhook_deliveries_alert ON webhook_deliveries(alert_id);
        -- The experiment each user compares a project's runs against.
        CREATE TABLE baselines (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            PRIMARY KEY (user_id, project_id)
        ) WITHOUT ROWID;
        """,
    ),
    (
        12,
        """
        -- The shape of the encoded row in row_json (experiments.ROW_VERSION): a listing
        -- rebuilds a row stored in an older shape instead of sending it as it is.
        ALTER TABLE experiments ADD COLUMN row_version INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        13,
        """
        -- This database's own random name: server processes sharing it (through Redis)
        -- name their event channel after it, so clusters sharing one Redis stay apart.
        CREATE TABLE instance (id TEXT NOT NULL);
        INSERT INTO instance (id) VALUES (lower(hex(randomblob(8))));
        """,
    ),
    (
        14,
        """
        -- Project counts (every event that changes them, every project listing) count a
        -- project's experiments and its running ones: with status and subdir in the index
        -- that is read from the index alone (a 10,000-run project: 22 ms -> 3 ms).
        -- The old index is a prefix of this one.
        CREATE INDEX experiments_counts ON experiments(repo_key, poster_id, subdir, status);
        DROP INDEX experiments_repo;
        """,
    ),
    (
        15,
        """
        -- The step whose post last changed an experiment's params: a late post of an
        -- older step must not overwrite newer params (events arrive in any order).
        ALTER TABLE experiments ADD COLUMN params_step INTEGER;
        """,
    ),
    (
        16,
        """
        -- When a key's holder proved it theirs: by logging in with it over SSH and the
        -- account's password once (a public key is public: anyone can paste anyone's).
        -- Keys from before this version count as proven. Until proven, a key is only one
        -- account's claim, and several accounts may claim one key; a proven key is one
        -- account's alone.
        CREATE TABLE ssh_keys_v16 (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL,
            public_key TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used_at REAL,
            confirmed_at REAL,
            UNIQUE (user_id, fingerprint)
        );
        INSERT INTO ssh_keys_v16 (id, user_id, fingerprint, public_key, comment, created_at,
            last_used_at, confirmed_at)
            SELECT id, user_id, fingerprint, public_key, comment, created_at, last_used_at,
                created_at FROM ssh_keys;
        DROP TABLE ssh_keys;
        ALTER TABLE ssh_keys_v16 RENAME TO ssh_keys;
        CREATE INDEX ssh_keys_user ON ssh_keys(user_id);
        CREATE INDEX ssh_keys_fingerprint ON ssh_keys(fingerprint);
        CREATE UNIQUE INDEX ssh_keys_proven ON ssh_keys(fingerprint)
            WHERE confirmed_at IS NOT NULL;
        """,
    ),
    (
        17,
        """
        -- PostgreSQL indexes its points log's seq here; SQLite files the log by rowid,
        -- which is the table's key already. Recorded so both engines share one version.
        """,
    ),
    (
        18,
        """
        -- The addresses (an IPv6 client by its /64) each user logged in from: there they
        -- skip the per-user login throttle, after a restart too (kept in memory only, a
        -- restart let anyone lock a user out with failed tries from fresh addresses).
        CREATE TABLE login_addresses (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            address TEXT NOT NULL,
            last_at REAL NOT NULL,
            PRIMARY KEY (user_id, address)
        )
        """,
    ),
    (
        19,
        r"""
        -- Subdirs are matched as one spelling since version 19 (shared.repo_url.subdir_key):
        -- backslashes as slashes, no slash around, no leading "./", "." for the root. An
        -- experiment whose subdir changes has its stored API row encoded again.
        UPDATE projects SET subdir = NULLIF(trim(replace(subdir, '\', '/'), '/'), '')
            WHERE subdir IS NOT NULL;
        UPDATE projects SET subdir = NULLIF(trim(substr(subdir, 3), '/'), '')
            WHERE subdir LIKE './%';
        UPDATE projects SET subdir = NULL WHERE subdir = '.';
        UPDATE experiments SET row_version = 0,
            subdir = NULLIF(trim(replace(subdir, '\', '/'), '/'), '')
            WHERE subdir LIKE '%\%' OR subdir LIKE '/%' OR subdir LIKE '%/';
        UPDATE experiments SET row_version = 0,
            subdir = NULLIF(trim(substr(subdir, 3), '/'), '')
            WHERE subdir LIKE './%';
        UPDATE experiments SET row_version = 0, subdir = NULL WHERE subdir = '.'
        """,
    ),
    (
        20,
        """
        -- A project deletion under way (it goes a bounded part per transaction): the
        -- server finishes it when it starts again after being stopped part-way.
        CREATE TABLE project_deletions (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            started_at REAL NOT NULL
        )
        """,
    ),
    (
        21,
        """
        -- Which SSH listener (host:port) made a TUI's login: a server that starts again
        -- ends only the logins it left itself, not those of another server on the same
        -- database (NULL: made before version 21, ended by any).
        ALTER TABLE ssh_sessions ADD COLUMN listener TEXT
        """,
    ),
    (22, rekey_git_suffix),
    (23, scrub_repo_credentials),
    (24, start_id_counters),
    (
        25,
        """
        -- A run as it was before its latest `start` (JSON), until its next `data` tells
        -- whether that start was of its name run anew: the earlier run, set aside, gets
        -- its end, params and message back.
        ALTER TABLE experiments ADD COLUMN before_start BLOB
        """,
    ),
)


def migrate(conn: Conn) -> int:
    """Apply every migration not yet recorded; returns the schema version reached."""
    if is_postgres(conn):
        return _migrate_postgres(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    _refuse_newer(done, MIGRATIONS)
    for version, script in MIGRATIONS:
        if version in done:
            continue
        # executescript would COMMIT on its own; run statements one by one inside one
        # IMMEDIATE transaction so a half-applied migration can never be recorded.
        conn.execute("BEGIN IMMEDIATE")
        try:
            _apply(conn, version, script)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max((v for v, _ in MIGRATIONS), default=0)


def _refuse_newer(done: set[int], known: Sequence[tuple[int, object]]) -> None:
    newest = max((v for v, _ in known), default=0)
    if done and max(done) > newest:
        raise SchemaTooNew(
            f"it is at schema version {max(done)}, newer than this livestudio knows"
            f" ({newest}): run a livestudio at least as new as the one that migrated it"
        )


def _apply(conn: Conn, version: int, script: Migration) -> None:
    """Run one migration's statements and record it (inside the caller's transaction)."""
    if callable(script):
        script(conn)
    for statement in _statements(script) if isinstance(script, str) else ():
        conn.execute(statement)
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
        (version, time.time()),
    )


def _migrate_postgres(conn: Conn) -> int:
    from backend.db import pg_schema

    # Several server processes may start at once: one migrates, the others wait for it.
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (pg_schema.MIGRATE_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        _refuse_newer(done, pg_schema.MIGRATIONS)
        for version, script in pg_schema.MIGRATIONS:
            if version not in done:
                _apply(conn, version, script)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(v for v, _ in pg_schema.MIGRATIONS)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

"""Every SQL statement of the server.

Writes are synchronous functions on a ``sqlite3.Connection`` run by the single writer
(``backend.db.writer``) or the CLI; reads are ``async`` functions on the read connection.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import msgspec

from shared.api import (
    ExperimentRow,
    ImageInfo,
    Invitation,
    Members,
    ProjectRow,
    SshKeyInfo,
    TokenInfo,
)
from shared.live import ErrorInfo
from shared.values import to_wire

_errors_decoder = msgspec.json.Decoder(list[ErrorInfo])
_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode
RATE_WINDOW = 60.0
"""Seconds of steps an experiment's ``steps_per_s`` is measured over."""
# UNIX time with sub-second precision; unixepoch('subsec') needs SQLite 3.42.
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"


def ts(value: float | None) -> datetime | None:
    """A stored UNIX time as an aware datetime."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


# ---------------------------------------------------------------- stream events


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A stream event about to be stored; the routing fields decide who may see it."""

    kind: str
    data: bytes
    repo_key: str | None = None
    subdir: str | None = None
    poster_id: int | None = None
    project_id: int | None = None
    member_ids: tuple[int, ...] = ()


class StoredEvent(NewEvent, frozen=True, kw_only=True):
    """A stored stream event with its sequence number."""

    id: int


def insert_event(conn: sqlite3.Connection, event: NewEvent) -> StoredEvent:
    """Append an event; its id orders the stream."""
    cur = conn.execute(
        "INSERT INTO events (created_at, kind, repo_key, subdir, poster_id, project_id,"
        " member_ids, data) VALUES (" + _NOW + ", ?, ?, ?, ?, ?, ?, ?)",
        (
            event.kind,
            event.repo_key,
            event.subdir,
            event.poster_id,
            event.project_id,
            ",".join(map(str, event.member_ids)),
            event.data,
        ),
    )
    return StoredEvent(
        kind=event.kind,
        data=event.data,
        repo_key=event.repo_key,
        subdir=event.subdir,
        poster_id=event.poster_id,
        project_id=event.project_id,
        member_ids=event.member_ids,
        id=int(cur.lastrowid or 0),
    )


def prune_events(conn: sqlite3.Connection, keep: int) -> int:
    """Drop all but the newest ``keep`` events; returns how many were dropped.

    The newest event always stays: event ids are rowids, and keeping the highest one is
    what keeps them increasing.
    """
    cur = conn.execute(
        "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", (max(1, keep),)
    )
    return cur.rowcount


def _event_from_row(row: Sequence[Any]) -> StoredEvent:
    members = tuple(int(m) for m in row[6].split(",") if m) if row[6] else ()
    return StoredEvent(
        id=row[0],
        kind=row[1],
        repo_key=row[2],
        subdir=row[3],
        poster_id=row[4],
        project_id=row[5],
        member_ids=members,
        data=bytes(row[7]),
    )


async def events_after(db: aiosqlite.Connection, last_id: int, limit: int) -> list[StoredEvent]:
    """Stored events with an id above ``last_id``, oldest first."""
    async with db.execute(
        "SELECT id, kind, repo_key, subdir, poster_id, project_id, member_ids, data"
        " FROM events WHERE id > ? ORDER BY id LIMIT ?",
        (last_id, limit),
    ) as cur:
        return [_event_from_row(row) for row in await cur.fetchall()]


async def event_id_range(db: aiosqlite.Connection) -> tuple[int, int]:
    """(oldest retained id, newest id); (1, 0) when there are none yet."""
    async with db.execute("SELECT MIN(id), MAX(id) FROM events") as cur:
        row = await cur.fetchone()
    if row is None or row[0] is None:
        return 1, 0
    return int(row[0]), int(row[1])


# ---------------------------------------------------------------- users and sessions


@dataclass(frozen=True)
class UserAuth:
    """What login needs to know about a user."""

    id: int
    username: str
    password_hash: str
    is_admin: bool


def insert_user(conn: sqlite3.Connection, username: str, password_hash: str, admin: bool) -> int:
    """Create a user; raises ``sqlite3.IntegrityError`` when the name is taken."""
    cur = conn.execute(
        "INSERT INTO users (username, password_hash, is_admin, created_at)"
        " VALUES (?, ?, ?, " + _NOW + ")",
        (username, password_hash, int(admin)),
    )
    return int(cur.lastrowid or 0)


def user_by_name_sync(conn: sqlite3.Connection, username: str) -> UserAuth | None:
    """Look a user up by name (case-insensitive), for the CLI and the writer."""
    row = conn.execute(
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = ?",
        (username,),
    ).fetchone()
    return UserAuth(row[0], row[1], row[2], bool(row[3])) if row else None


def count_users(conn: sqlite3.Connection) -> int:
    """How many users exist."""
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def all_usernames(conn: sqlite3.Connection) -> list[str]:
    """Every username, sorted."""
    return [r[0] for r in conn.execute("SELECT username FROM users ORDER BY username")]


async def user_by_name(db: aiosqlite.Connection, username: str) -> UserAuth | None:
    """Look a user up by name (case-insensitive)."""
    async with db.execute(
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = ?",
        (username,),
    ) as cur:
        row = await cur.fetchone()
    return UserAuth(row[0], row[1], row[2], bool(row[3])) if row else None


async def user_by_id(db: aiosqlite.Connection, user_id: int) -> UserAuth | None:
    """Look a user up by id."""
    async with db.execute(
        "SELECT id, username, password_hash, is_admin FROM users WHERE id = ?", (user_id,)
    ) as cur:
        row = await cur.fetchone()
    return UserAuth(row[0], row[1], row[2], bool(row[3])) if row else None


def set_password(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    """Replace a user's password hash."""
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def insert_session(conn: sqlite3.Connection, user_id: int, token_hash: bytes) -> int:
    """Start a session."""
    cur = conn.execute(
        "INSERT INTO sessions (user_id, token_hash, created_at, last_used_at)"
        " VALUES (?, ?, " + _NOW + ", " + _NOW + ")",
        (user_id, token_hash),
    )
    return int(cur.lastrowid or 0)


def delete_session(conn: sqlite3.Connection, session_id: int) -> None:
    """End one session."""
    conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def delete_other_sessions(conn: sqlite3.Connection, user_id: int, keep_id: int | None) -> None:
    """End every session of a user but ``keep_id``."""
    conn.execute("DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?", (user_id, keep_id))


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to and what it allows."""

    user_id: int
    username: str
    is_admin: bool
    session_id: int | None = None
    token_id: int | None = None
    scopes: frozenset[str] = frozenset()
    last_used_at: float | None = None
    kind: str = "session"
    """``session`` (logged in with a password), or the kind of access token."""

    @property
    def is_session(self) -> bool:
        """Whether this is a login session (account changes need one)."""
        return self.session_id is not None


async def session_principal(
    db: aiosqlite.Connection, token_hash: bytes, created_after: float
) -> Principal | None:
    """The user behind a session token, if it exists and started after ``created_after``."""
    async with db.execute(
        "SELECT s.id, u.id, u.username, u.is_admin, s.last_used_at FROM sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.created_at > ?",
        (token_hash, created_after),
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return Principal(row[1], row[2], bool(row[3]), session_id=row[0], last_used_at=row[4])


_TOKEN_PRINCIPAL = (
    "SELECT t.id, u.id, u.username, u.is_admin, t.scopes, t.last_used_at, t.kind FROM tokens t"
    " JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?"
)


def _token_principal(row: Sequence[Any] | None) -> Principal | None:
    if row is None:
        return None
    scopes = frozenset(s for s in row[4].split(",") if s)
    return Principal(
        row[1],
        row[2],
        bool(row[3]),
        token_id=row[0],
        scopes=scopes,
        last_used_at=row[5],
        kind=row[6],
    )


def token_principal_sync(conn: sqlite3.Connection, token_hash: bytes) -> Principal | None:
    """The user behind an access token, inside a write transaction."""
    return _token_principal(conn.execute(_TOKEN_PRINCIPAL, (token_hash,)).fetchone())


async def token_principal(db: aiosqlite.Connection, token_hash: bytes) -> Principal | None:
    """The user behind an access token."""
    async with db.execute(_TOKEN_PRINCIPAL, (token_hash,)) as cur:
        return _token_principal(await cur.fetchone())


def touch_token(conn: sqlite3.Connection, token_id: int, now: float) -> None:
    """Record that a token was used."""
    conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, token_id))


def insert_token(
    conn: sqlite3.Connection,
    *,
    user_id: int,
    kind: str,
    name: str,
    token_hash: bytes,
    prefix: str,
    scopes: Iterable[str],
) -> int:
    """Store a new access token (hash and display prefix only)."""
    cur = conn.execute(
        "INSERT INTO tokens (user_id, kind, name, token_hash, prefix, scopes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, " + _NOW + ")",
        (user_id, kind, name, token_hash, prefix, ",".join(sorted(scopes))),
    )
    return int(cur.lastrowid or 0)


def delete_profile_token(conn: sqlite3.Connection, user_id: int) -> bool:
    """Delete the user's profile token; False when there was none."""
    cur = conn.execute("DELETE FROM tokens WHERE user_id = ? AND kind = 'profile'", (user_id,))
    return cur.rowcount > 0


def delete_client_token(conn: sqlite3.Connection, user_id: int, token_id: int) -> bool:
    """Delete one client token of the user; False when it is not theirs or missing."""
    cur = conn.execute(
        "DELETE FROM tokens WHERE user_id = ? AND id = ? AND kind = 'client'",
        (user_id, token_id),
    )
    return cur.rowcount > 0


def delete_all_tokens(conn: sqlite3.Connection, user_id: int) -> None:
    """Delete every access token of the user."""
    conn.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))


def _token_info(row: Sequence[Any]) -> TokenInfo:
    return TokenInfo(
        id=row[0],
        name=row[1],
        kind=row[2],
        prefix=row[3],
        scopes=[s for s in row[4].split(",") if s],
        created_at=ts(row[5]),  # type: ignore[arg-type]
        last_used_at=ts(row[6]),
    )


_TOKEN_INFO = "SELECT id, name, kind, prefix, scopes, created_at, last_used_at FROM tokens"


def token_info_sync(conn: sqlite3.Connection, token_id: int) -> TokenInfo:
    """Metadata of one token."""
    return _token_info(conn.execute(f"{_TOKEN_INFO} WHERE id = ?", (token_id,)).fetchone())


async def user_tokens(db: aiosqlite.Connection, user_id: int) -> list[TokenInfo]:
    """Every token of the user, profile token first."""
    async with db.execute(
        f"{_TOKEN_INFO} WHERE user_id = ? ORDER BY kind DESC, id", (user_id,)
    ) as cur:
        return [_token_info(row) for row in await cur.fetchall()]


# ---------------------------------------------------------------- projects


@dataclass(frozen=True)
class ProjectScope:
    """Which experiments a project shows, and since which event each member is in it."""

    id: int
    repo_key: str
    subdir: str | None
    members: dict[int, int]
    """Member id → the newest event id when they joined (``since_event``)."""

    @property
    def member_ids(self) -> frozenset[int]:
        """The members."""
        return frozenset(self.members)

    def shows(
        self, repo_key: str | None, subdir: str | None, poster_id: int | None, event_id: int = 0
    ) -> bool:
        """True when an experiment with these fields is visible in the project.

        With ``event_id``: visible in an event of that id, which must be newer than when
        its poster joined (a stream replay never shows what came before that).
        """
        since = self.members.get(poster_id) if poster_id is not None else None
        return (
            since is not None
            and (event_id == 0 or since < event_id)
            and repo_key == self.repo_key
            and (self.subdir is None or subdir == self.subdir)
        )

    def joined(self, member_ids: Iterable[int], event_id: int) -> ProjectScope:
        """The scope after a ``project`` event: new members joined at ``event_id``."""
        members = {m: self.members.get(m, event_id) for m in member_ids}
        return ProjectScope(self.id, self.repo_key, self.subdir, members)


def _members_since(raw: object) -> dict[int, int]:
    pairs = (item.split(":") for item in str(raw).split(",") if item)
    return {int(user): int(since) for user, since in pairs}


def insert_project(
    conn: sqlite3.Connection,
    *,
    name: str,
    repo_url: str,
    repo_key: str,
    subdir: str | None,
    owner_id: int,
) -> int:
    """Create a project with its owner as the first member."""
    cur = conn.execute(
        "INSERT INTO projects (id, name, repo_url, repo_key, subdir, owner_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, " + _NOW + ")",
        (next_id(conn, "projects"), name, repo_url, repo_key, subdir, owner_id),
    )
    project_id = int(cur.lastrowid or 0)
    add_member(conn, project_id, owner_id)
    return project_id


def next_id(conn: sqlite3.Connection, table: str) -> int:
    """A new id for ``table`` ("experiments" or "projects") that was never given out before."""
    return int(
        conn.execute(
            "INSERT INTO id_high_water (name, id) VALUES (?, 1) ON CONFLICT (name)"
            " DO UPDATE SET id = id + 1 RETURNING id",
            (table,),
        ).fetchone()[0]
    )


def add_member(conn: sqlite3.Connection, project_id: int, user_id: int) -> None:
    """Add a member (no-op when already one), recording the newest event id as they join."""
    conn.execute(
        "INSERT OR IGNORE INTO project_members (project_id, user_id, since_event)"
        " VALUES (?, ?, (SELECT COALESCE(MAX(id), 0) FROM events))",
        (project_id, user_id),
    )


def delete_project(conn: sqlite3.Connection, project_id: int) -> None:
    """Delete a project (experiments stay: they belong to their posters)."""
    conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))


def project_owner_id(conn: sqlite3.Connection, project_id: int) -> int | None:
    """The owner of a project (``None`` when the owner was deleted)."""
    row = conn.execute("SELECT owner_id FROM projects WHERE id = ?", (project_id,)).fetchone()
    return row[0] if row else None


_SHOWING = (
    "FROM projects p JOIN project_members m ON m.project_id = p.id"
    " WHERE p.repo_key = ? AND (p.subdir IS NULL OR p.subdir IS ?) AND m.user_id = ?"
)


def project_ids_showing(
    conn: sqlite3.Connection, repo_key: str, subdir: str | None, poster_id: int
) -> list[int]:
    """Projects in which an experiment with these fields is visible."""
    rows = conn.execute(f"SELECT p.id {_SHOWING}", (repo_key, subdir, poster_id)).fetchall()
    return [r[0] for r in rows]


_PROJECT_ROW = """
    SELECT p.id, p.name, p.repo_url, p.subdir, (SELECT username FROM users WHERE id = p.owner_id),
        (SELECT COUNT(*) FROM experiments e WHERE e.repo_key = p.repo_key
            AND (p.subdir IS NULL OR e.subdir IS p.subdir)
            AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id)),
        (SELECT COUNT(*) FROM experiments e WHERE e.repo_key = p.repo_key
            AND (p.subdir IS NULL OR e.subdir IS p.subdir) AND e.status = 'running'
            AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id))
    FROM projects p
"""


def _project_row(row: Sequence[Any]) -> ProjectRow:
    return ProjectRow(
        id=row[0],
        name=row[1],
        repo_url=row[2],
        subdir=row[3],
        owner=row[4],
        experiments=row[5],
        running=row[6],
    )


def project_row_sync(conn: sqlite3.Connection, project_id: int) -> ProjectRow:
    """A project with its counts, inside a write transaction."""
    return _project_row(conn.execute(f"{_PROJECT_ROW} WHERE p.id = ?", (project_id,)).fetchone())


def project_member_ids_sync(conn: sqlite3.Connection, project_id: int) -> tuple[int, ...]:
    """Members of a project."""
    rows = conn.execute(
        "SELECT user_id FROM project_members WHERE project_id = ?", (project_id,)
    ).fetchall()
    return tuple(r[0] for r in rows)


def remove_member(conn: sqlite3.Connection, project_id: int, user_id: int) -> bool:
    """Remove a member; False when they were not one."""
    cur = conn.execute(
        "DELETE FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)
    )
    return cur.rowcount > 0


def invite(conn: sqlite3.Connection, project_id: int, user_id: int, invited_by: int) -> None:
    """Invite a user to a project (again: the invitation is renewed)."""
    conn.execute(
        "INSERT INTO project_invitations (project_id, user_id, invited_by, created_at)"
        " VALUES (?, ?, ?, " + _NOW + ") ON CONFLICT (project_id, user_id) DO UPDATE"
        " SET invited_by = excluded.invited_by, created_at = excluded.created_at",
        (project_id, user_id, invited_by),
    )


def drop_invitation(conn: sqlite3.Connection, project_id: int, user_id: int) -> bool:
    """Forget an invitation (accepted, declined or withdrawn); False when there was none."""
    cur = conn.execute(
        "DELETE FROM project_invitations WHERE project_id = ? AND user_id = ?",
        (project_id, user_id),
    )
    return cur.rowcount > 0


_INVITATIONS = """
    SELECT p.id, p.name, p.repo_url, p.subdir, inviter.username, i.created_at
    FROM project_invitations i JOIN projects p ON p.id = i.project_id
    LEFT JOIN users inviter ON inviter.id = i.invited_by
"""


def _invitation(row: Sequence[Any]) -> Invitation:
    return Invitation(
        project_id=row[0],
        project_name=row[1],
        repo_url=row[2],
        subdir=row[3],
        invited_by=row[4],
        created_at=ts(row[5]),  # type: ignore[arg-type]
    )


def invitation_sync(conn: sqlite3.Connection, project_id: int, user_id: int) -> Invitation | None:
    """One pending invitation of a user."""
    row = conn.execute(
        f"{_INVITATIONS} WHERE i.project_id = ? AND i.user_id = ?", (project_id, user_id)
    ).fetchone()
    return _invitation(row) if row else None


async def invitations_of(db: aiosqlite.Connection, user_id: int) -> list[Invitation]:
    """The invitations waiting for a user's answer, newest first."""
    async with db.execute(
        f"{_INVITATIONS} WHERE i.user_id = ? ORDER BY i.created_at DESC", (user_id,)
    ) as cur:
        return [_invitation(r) for r in await cur.fetchall()]


_MEMBERS = (
    "SELECT u.username, 'member' FROM project_members m JOIN users u ON u.id = m.user_id"
    " WHERE m.project_id = :p UNION ALL SELECT u.username, 'invited' FROM project_invitations i"
    " JOIN users u ON u.id = i.user_id WHERE i.project_id = :p UNION ALL SELECT u.username,"
    " 'owner' FROM projects p JOIN users u ON u.id = p.owner_id WHERE p.id = :p"
)


def _members(rows: Iterable[Sequence[Any]]) -> Members:
    by_kind: dict[str, list[str]] = {"member": [], "invited": [], "owner": []}
    for name, kind in rows:
        by_kind[kind].append(name)
    owner = by_kind["owner"]
    return Members(
        owner=owner[0] if owner else None,
        members=sorted(by_kind["member"]),
        invited=sorted(by_kind["invited"]),
    )


def members_of_sync(conn: sqlite3.Connection, project_id: int) -> Members:
    """Owner, members and invited users of a project."""
    return _members(conn.execute(_MEMBERS, {"p": project_id}).fetchall())


async def members_of(db: aiosqlite.Connection, project_id: int) -> Members:
    """Owner, members and invited users of a project."""
    async with db.execute(_MEMBERS, {"p": project_id}) as cur:
        return _members(await cur.fetchall())


def owners_showing(
    conn: sqlite3.Connection, repo_key: str, subdir: str | None, poster_id: int
) -> set[int]:
    """Owners of the projects an experiment with these fields shows in."""
    rows = conn.execute(f"SELECT p.owner_id {_SHOWING}", (repo_key, subdir, poster_id)).fetchall()
    return {r[0] for r in rows if r[0] is not None}


async def projects_of(db: aiosqlite.Connection, user_id: int) -> list[ProjectRow]:
    """Every project the user is a member of, with counts."""
    async with db.execute(
        f"{_PROJECT_ROW} WHERE p.id IN (SELECT project_id FROM project_members"
        " WHERE user_id = ?) ORDER BY p.name, p.id",
        (user_id,),
    ) as cur:
        return [_project_row(r) for r in await cur.fetchall()]


async def project_scopes_of(db: aiosqlite.Connection, user_id: int) -> list[ProjectScope]:
    """The visibility scope of every project the user is a member of."""
    async with db.execute(
        "SELECT p.id, p.repo_key, p.subdir, group_concat(m2.user_id || ':' || m2.since_event)"
        " FROM projects p JOIN project_members m ON m.project_id = p.id AND m.user_id = ?"
        " JOIN project_members m2 ON m2.project_id = p.id GROUP BY p.id",
        (user_id,),
    ) as cur:
        rows = await cur.fetchall()
    return [ProjectScope(r[0], r[1], r[2], _members_since(r[3])) for r in rows]


# ---------------------------------------------------------------- experiments


@dataclass
class ExperimentRecord:
    """An experiment as the writer reads, changes and writes it back."""

    id: int
    poster_id: int
    repo_key: str
    repo_url: str
    baseline_sha: str
    name: str
    client: str
    status: str
    started_at: float
    updated_at: float
    message: str | None = None
    subdir: str | None = None
    experiment_rev: str | None = None
    step: int | None = None
    done_step: int | None = None
    metrics_step: int | None = None
    finished_at: float | None = None
    pushed: bool = False
    errors: list[ErrorInfo] = field(default_factory=list)
    machine: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    saved_updated_at: float = 0.0
    """The ``updated_at`` last written to the database (the writer skips no-op writes)."""
    row_json: bytes = b""
    """The encoded API row as last written (what listings and stream events send)."""
    _flat_params: tuple[tuple[Any, ...], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )
    steps_per_s: float | None = None
    """The step rate over the last minute of steps (kept in the API row only)."""
    _step_samples: deque[tuple[float, int]] | None = field(default=None, repr=False, compare=False)

    def note_step(self, now: float) -> None:
        """The run reached a new step: update its rate from (time, step) samples.

        One sample a second over the last minute (the newest replaces a sample younger
        than a second), so the cost is constant however fast the run steps.
        """
        if self.step is None:
            return
        samples = self._step_samples
        if samples is None:
            samples = self._step_samples = deque(maxlen=int(RATE_WINDOW) + 2)
        if len(samples) >= 2 and now - samples[-2][0] < 1.0:
            samples[-1] = (now, self.step)
        else:
            samples.append((now, self.step))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        (t0, s0), (t1, s1) = samples[0], samples[-1]
        if t1 > t0 and s1 > s0:
            self.steps_per_s = float(f"{(s1 - s0) / (t1 - t0):.4g}")

    def to_row(self) -> ExperimentRow:
        """The experiment as the read API shows it."""
        from shared.flatten import flatten_files

        # Params rarely change while metrics change every step: flatten them again only
        # when one of the per-file dicts was replaced (the writer replaces, never mutates).
        files = tuple(self.params.values())
        cached = self._flat_params
        if (
            cached is None
            or len(cached[0]) != len(files)
            or any(a is not b for a, b in zip(cached[0], files, strict=True))
        ):
            cached = self._flat_params = (files, flatten_files(self.params))
        return ExperimentRow(
            id=self.id,
            baseline_sha=self.baseline_sha,
            name=self.name,
            status=self.status,  # type: ignore[arg-type]
            client=self.client,
            message=self.message,
            subdir=self.subdir,
            step=self.step,
            started_at=ts(self.started_at),  # type: ignore[arg-type]
            updated_at=ts(self.updated_at),  # type: ignore[arg-type]
            finished_at=ts(self.finished_at),
            experiment_rev=self.experiment_rev,
            pushed=self.pushed,
            errors=self.errors,
            machine=self.machine,
            metrics=flatten_files(self.metrics),
            params=cached[1],
            steps_per_s=self.steps_per_s,
        )


_EXPERIMENT_COLUMNS = (
    "id, poster_id, repo_key, repo_url, baseline_sha, name, client, status, started_at,"
    " updated_at, message, subdir, experiment_rev, step, done_step, metrics_step,"
    " finished_at, pushed, errors, machine, params, metrics"
)


def _record(row: Sequence[Any]) -> ExperimentRecord:
    return ExperimentRecord(
        *row[:17],  # type: ignore[misc]  # the first 17 columns are the first 17 fields
        pushed=bool(row[17]),
        errors=_errors_decoder.decode(row[18]),
        machine=_json_decode(row[19]) if row[19] else None,
        params=_json_decode(row[20]),
        metrics=_json_decode(row[21]),
        saved_updated_at=row[9],
    )


def find_experiment(
    conn: sqlite3.Connection, poster_id: int, repo_key: str, baseline_sha: str, name: str
) -> ExperimentRecord | None:
    """The poster's experiment with this identity, if it exists."""
    row = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments"
        " WHERE poster_id = ? AND repo_key = ? AND baseline_sha = ? AND name = ?",
        (poster_id, repo_key, baseline_sha, name),
    ).fetchone()
    return _record(row) if row else None


def _values(r: ExperimentRecord) -> tuple[Any, ...]:
    return (
        r.client,
        r.status,
        r.started_at,
        r.updated_at,
        r.message,
        r.subdir,
        r.experiment_rev,
        r.step,
        r.done_step,
        r.metrics_step,
        r.finished_at,
        int(r.pushed),
        _json_encode(r.errors),
        _json_encode(r.machine) if r.machine is not None else None,
        _json_encode(r.params),
        _json_encode(r.metrics),
    )


_MUTABLE = (
    "client, status, started_at, updated_at, message, subdir, experiment_rev, step,"
    " done_step, metrics_step, finished_at, pushed, errors, machine, params, metrics"
)


def insert_experiment(conn: sqlite3.Connection, r: ExperimentRecord) -> int:
    """Store a new experiment; returns its id (and sets it on ``r``)."""
    cur = conn.execute(
        "INSERT INTO experiments (id, poster_id, repo_key, repo_url, baseline_sha, name,"
        f" {_MUTABLE}) VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * 16)})",
        (
            next_id(conn, "experiments"),
            r.poster_id,
            r.repo_key,
            r.repo_url,
            r.baseline_sha,
            r.name,
            *_values(r),
        ),
    )
    r.id = int(cur.lastrowid or 0)
    _store_row_json(conn, r)
    return r.id


_UPDATE_EXPERIMENT = (
    "UPDATE experiments SET "
    + ", ".join(f"{c.strip()} = ?" for c in _MUTABLE.split(","))
    + ", row_json = ? WHERE id = ?"
)


def update_experiment(conn: sqlite3.Connection, r: ExperimentRecord) -> None:
    """Write every mutable field of an experiment back, with its encoded API row."""
    _encode_row(r)
    conn.execute(_UPDATE_EXPERIMENT, (*_values(r), r.row_json, r.id))


_UPDATE_PROGRESS = (
    "UPDATE experiments SET updated_at = ?, step = ?, metrics_step = ?, metrics = ?,"
    " row_json = ? WHERE id = ?"
)


def update_experiment_progress(conn: sqlite3.Connection, r: ExperimentRecord) -> None:
    """Write only what a training step changes (step, metrics, updated_at) and the API row.

    Most posts change nothing else; leaving status out also spares its index a write.
    """
    _encode_row(r)
    conn.execute(
        _UPDATE_PROGRESS,
        (r.updated_at, r.step, r.metrics_step, _json_encode(r.metrics), r.row_json, r.id),
    )


def _encode_row(r: ExperimentRecord) -> None:
    """Encode the API row once per write; listings and stream events send these bytes."""
    r.row_json = _json_encode(r.to_row())


def _store_row_json(conn: sqlite3.Connection, r: ExperimentRecord) -> None:
    _encode_row(r)
    conn.execute("UPDATE experiments SET row_json = ? WHERE id = ?", (r.row_json, r.id))


def stale_experiments(conn: sqlite3.Connection, cutoff: float) -> list[ExperimentRecord]:
    """Running experiments that have been silent since before ``cutoff``."""
    rows = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments"
        " WHERE status = 'running' AND updated_at < ?",
        (cutoff,),
    ).fetchall()
    return [_record(r) for r in rows]


def delete_experiment(conn: sqlite3.Connection, experiment_id: int) -> None:
    """Delete an experiment with its series and images."""
    conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))


_VISIBLE_TO = """
    EXISTS (SELECT 1 FROM projects p JOIN project_members me
                ON me.project_id = p.id AND me.user_id = :user
            WHERE p.repo_key = e.repo_key AND (p.subdir IS NULL OR e.subdir IS p.subdir)
              AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id))
"""


async def experiment_visible(
    db: aiosqlite.Connection, experiment_id: int, user_id: int
) -> ExperimentRecord | None:
    """An experiment, if the user can see it in one of their projects."""
    async with db.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = :id AND {_VISIBLE_TO}",
        {"id": experiment_id, "user": user_id},
    ) as cur:
        row = await cur.fetchone()
    return _record(row) if row else None


def experiment_visible_sync(
    conn: sqlite3.Connection, experiment_id: int, user_id: int
) -> ExperimentRecord | None:
    """Same as :func:`experiment_visible`, inside a write transaction."""
    row = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = :id AND {_VISIBLE_TO}",
        {"id": experiment_id, "user": user_id},
    ).fetchone()
    return _record(row) if row else None


async def project_scope(
    db: aiosqlite.Connection, project_id: int, user_id: int
) -> ProjectScope | None:
    """The project's scope, if the user is a member."""
    async with db.execute(
        "SELECT p.id, p.repo_key, p.subdir, group_concat(m2.user_id || ':' || m2.since_event)"
        " FROM projects p JOIN project_members m ON m.project_id = p.id AND m.user_id = ?"
        " JOIN project_members m2 ON m2.project_id = p.id WHERE p.id = ? GROUP BY p.id",
        (user_id, project_id),
    ) as cur:
        r = await cur.fetchone()
    if r is None:
        return None
    return ProjectScope(r[0], r[1], r[2], _members_since(r[3]))


async def experiment_rows_json(
    db: aiosqlite.Connection, scope: ProjectScope, status: str | None
) -> bytes:
    """The project's experiment rows as one JSON array, from the stored encodings."""
    members = sorted(scope.member_ids)
    sql = (
        f"SELECT row_json, {_EXPERIMENT_COLUMNS} FROM experiments e WHERE e.repo_key = ?"
        f" AND e.poster_id IN ({','.join('?' * len(members))})"
    )
    args: list[Any] = [scope.repo_key, *members]
    if scope.subdir is not None:
        sql += " AND e.subdir IS ?"
        args.append(scope.subdir)
    if status is not None:
        sql += " AND e.status = ?"
        args.append(status)
    sql += " ORDER BY e.started_at DESC, e.id DESC"
    async with db.execute(sql, args) as cur:
        rows = await cur.fetchall()
    encoded = [r[0] if r[0] is not None else _json_encode(_record(r[1:]).to_row()) for r in rows]
    return b"[" + b",".join(encoded) + b"]"


# ---------------------------------------------------------------- series and images


def series_id(conn: sqlite3.Connection, experiment_id: int, name: str) -> int:
    """The id of an experiment's series, created on first use."""
    return int(
        conn.execute(
            "INSERT INTO series (experiment_id, name) VALUES (?, ?)"
            " ON CONFLICT (experiment_id, name) DO UPDATE SET name = excluded.name RETURNING id",
            (experiment_id, name),
        ).fetchone()[0]
    )


BLOCK_BITS = 8
"""Series are summarised in blocks of 2**BLOCK_BITS steps for downsampling."""


_UPSERT_CHUNK = 200  # rows per statement: 4 parameters each, well below SQLite's limit


def upsert_points_many(
    conn: sqlite3.Connection, rows: list[tuple[int, int, float]], now: float
) -> dict[int, list[tuple[int, float | None]]]:
    """Store (series, step, value) rows in few statements; returns new or changed rows by series.

    Unique on (series, step): a re-sent row overwrites and is not reported again.
    """
    changed: dict[int, list[tuple[int, float | None]]] = {}
    for start in range(0, len(rows), _UPSERT_CHUNK):
        chunk = rows[start : start + _UPSERT_CHUNK]
        sql = (
            "INSERT INTO points (series_id, step, value, arrived_at) VALUES "
            + ",".join(["(?, ?, ?, ?)"] * len(chunk))
            + " ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value,"
            " arrived_at = excluded.arrived_at WHERE value IS NOT excluded.value"
            " RETURNING series_id, step, value"
        )
        args = [x for series, step, value in chunk for x in (series, step, value, now)]
        for series, step, value in conn.execute(sql, args).fetchall():
            changed.setdefault(series, []).append((step, value))
    for points in changed.values():
        points.sort()
    return changed


def series_max_step(conn: sqlite3.Connection, series: int) -> int | None:
    """The highest step of a series, filed or still in the log."""
    row = conn.execute(
        "SELECT MAX(top) FROM (SELECT MAX(step) AS top FROM points WHERE series_id = ?"
        " UNION ALL SELECT MAX(step) FROM points_log WHERE series_id = ?)",
        (series, series),
    ).fetchone()
    return row[0] if row else None


def log_points(conn: sqlite3.Connection, rows: list[tuple[int, int, float]], now: float) -> None:
    """Append (series, step, value) rows to the points log, to be filed later in bulk."""
    for start in range(0, len(rows), _UPSERT_CHUNK):
        chunk = rows[start : start + _UPSERT_CHUNK]
        conn.execute(
            "INSERT INTO points_log (series_id, step, value, arrived_at) VALUES "
            + ",".join(["(?, ?, ?, ?)"] * len(chunk)),
            [x for series, step, value in chunk for x in (series, step, value, now)],
        )


def logged_points(conn: sqlite3.Connection) -> int:
    """How many rows wait in the points log."""
    return int(conn.execute("SELECT COUNT(*) FROM points_log").fetchone()[0])


def file_points(conn: sqlite3.Connection) -> int:
    """Move the points log into ``points`` (later rows win) and summarise sealed blocks.

    Returns how many rows were filed.
    """
    spans = conn.execute(
        "SELECT series_id, MAX(step), COUNT(*),"
        " (SELECT MAX(p.step) FROM points p WHERE p.series_id = l.series_id)"
        " FROM points_log l GROUP BY series_id"
    ).fetchall()
    if not spans:
        return 0
    # The blocks that hold logged rows, not every block between the lowest and highest
    # step: a series at steps 0 and 10**12 is two blocks, not four billion.
    blocks: dict[int, list[int]] = {}
    for series, block in conn.execute(
        "SELECT DISTINCT series_id, step >> ? FROM points_log", (BLOCK_BITS,)
    ):
        blocks.setdefault(series, []).append(block)
    # "WHERE true" tells SQLite's parser the ON CONFLICT belongs to the INSERT.
    conn.execute(
        "INSERT INTO points (series_id, step, value, arrived_at)"
        " SELECT series_id, step, value, arrived_at FROM points_log WHERE true ORDER BY rowid"
        " ON CONFLICT (series_id, step) DO UPDATE SET value = excluded.value,"
        " arrived_at = excluded.arrived_at"
    )
    conn.execute("DELETE FROM points_log")
    for series, high, _, top in spans:
        summarise_changes(conn, series, top, blocks.get(series, ()), high)
    return sum(count for _, _, count, _ in spans)


def summarise_changes(
    conn: sqlite3.Connection,
    series: int,
    old_top: int | None,
    blocks: Iterable[int],
    highest: int,
) -> int:
    """Keep a series' block summaries true after rows landed in ``blocks``.

    ``highest`` is the highest step written. Blocks that just became complete are
    summarised, and so are complete blocks that a late or changed row landed in (rare: a
    re-sent history). Returns the series' new highest step.

    Only blocks that hold points are summarised, so the cost follows the rows written,
    never the span of steps: every step above ``old_top`` is one of the new rows, so the
    one block besides ``blocks`` that can have just become complete is ``old_top``'s own.
    """
    new_top = highest if old_top is None else max(highest, old_top)
    sealed = new_top >> BLOCK_BITS
    stale = {block for block in blocks if block < sealed}
    if old_top is not None and old_top >> BLOCK_BITS < sealed:
        stale.add(old_top >> BLOCK_BITS)
    for block in sorted(stale):
        summarise_block(conn, series, block)
    return new_top


def summarise_block(conn: sqlite3.Connection, series: int, block: int) -> None:
    """(Re)compute the summary of one complete block: its lowest, highest and first NaN point."""
    first, last = block << BLOCK_BITS, ((block + 1) << BLOCK_BITS) - 1
    args = (series, first, last)
    where = "FROM points WHERE series_id = ? AND step BETWEEN ? AND ?"
    low = conn.execute(f"SELECT step, MIN(value) {where} AND value IS NOT NULL", args).fetchone()
    high = conn.execute(f"SELECT step, MAX(value) {where} AND value IS NOT NULL", args).fetchone()
    nan = conn.execute(f"SELECT MIN(step) {where} AND value IS NULL", args).fetchone()
    conn.execute(
        "INSERT OR REPLACE INTO point_blocks (series_id, block, min_step, min_value, max_step,"
        " max_value, nan_step) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (series, block, low[0], low[1], high[0], high[1], nan[0]),
    )


def summarise_series(conn: sqlite3.Connection, series: int) -> None:
    """Summarise every complete block of a series (after a bulk load)."""
    top = series_max_step(conn, series)
    if top is None:
        return
    blocks = conn.execute(
        "SELECT DISTINCT step >> ? FROM points WHERE series_id = ? AND step < ?",
        (BLOCK_BITS, series, (top >> BLOCK_BITS) << BLOCK_BITS),
    ).fetchall()
    for (block,) in blocks:
        summarise_block(conn, series, block)


def upsert_image(
    conn: sqlite3.Connection, experiment_id: int, path: str, step: int, png: bytes, now: float
) -> None:
    """Keep the latest image of a path."""
    conn.execute(
        "INSERT INTO images (experiment_id, path, step, png, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (experiment_id, path) DO UPDATE SET step = excluded.step,"
        " png = excluded.png, updated_at = excluded.updated_at",
        (experiment_id, path, step, png, now),
    )


async def series_names(db: aiosqlite.Connection, experiment_id: int) -> list[str]:
    """Names of an experiment's series, sorted."""
    async with db.execute(
        "SELECT name FROM series WHERE experiment_id = ? ORDER BY name", (experiment_id,)
    ) as cur:
        return [r[0] for r in await cur.fetchall()]


async def series_points(
    db: aiosqlite.Connection, experiment_id: int, name: str
) -> list[tuple[int, float | None]]:
    """Every point of one series, by step."""
    async with db.execute(
        "SELECT p.step, p.value FROM points p JOIN series s ON s.id = p.series_id"
        " WHERE s.experiment_id = ? AND s.name = ? ORDER BY p.step",
        (experiment_id, name),
    ) as cur:
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def arrival_times(
    db: aiosqlite.Connection, experiment_id: int, name: str, steps: list[int]
) -> dict[int, float]:
    """When each of these steps of a series arrived (UNIX time), by step."""
    found: dict[int, float] = {}
    for start in range(0, len(steps), 500):
        chunk = steps[start : start + 500]
        async with db.execute(
            "SELECT p.step, p.arrived_at FROM points p JOIN series s ON s.id = p.series_id"
            " WHERE s.experiment_id = ? AND s.name = ?"
            f" AND p.step IN ({','.join('?' * len(chunk))})",
            (experiment_id, name, *chunk),
        ) as cur:
            found.update({r[0]: r[1] for r in await cur.fetchall()})
    return found


async def images_of(db: aiosqlite.Connection, experiment_id: int) -> list[ImageInfo]:
    """The latest image of every path of an experiment."""
    async with db.execute(
        "SELECT path, step, updated_at FROM images WHERE experiment_id = ? ORDER BY path",
        (experiment_id,),
    ) as cur:
        return [
            ImageInfo(path=r[0], step=r[1], updated_at=ts(r[2]))  # type: ignore[arg-type]
            for r in await cur.fetchall()
        ]


async def image_png(db: aiosqlite.Connection, experiment_id: int, path: str) -> bytes | None:
    """The PNG bytes of an image."""
    async with db.execute(
        "SELECT png FROM images WHERE experiment_id = ? AND path = ?", (experiment_id, path)
    ) as cur:
        row = await cur.fetchone()
    return bytes(row[0]) if row else None


def wire_points(points: Iterable[tuple[int, float | None]]) -> list[tuple[int, Any]]:
    """Points with NaN/±inf spelled for JSON."""
    # x - x == 0 holds for finite numbers only: the common case costs no function call.
    return [
        (step, value if value is not None and value - value == 0 else to_wire(value))
        for step, value in points
    ]


# ---------------------------------------------------------------- device login


@dataclass(frozen=True)
class DeviceLogin:
    """A device login request (``dvc studio login``)."""

    id: int
    user_code: str
    client_name: str
    token_name: str
    scopes: frozenset[str]
    created_at: float
    expires_at: float
    approved_by: int | None


_DEVICE_COLUMNS = (
    "id, user_code, client_name, token_name, scopes, created_at, expires_at, approved_by"
)


def _device_login(row: Sequence[Any]) -> DeviceLogin:
    return DeviceLogin(
        row[0], row[1], row[2], row[3], frozenset(s for s in row[4].split(",") if s), *row[5:8]
    )


def insert_device_login(
    conn: sqlite3.Connection,
    *,
    device_code_hash: bytes,
    user_code: str,
    client_name: str,
    token_name: str,
    scopes: Iterable[str],
    now: float,
    expires_at: float,
) -> None:
    """Store a new device login request."""
    conn.execute(
        "INSERT INTO device_logins (device_code_hash, user_code, client_name, token_name,"
        " scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            device_code_hash,
            user_code,
            client_name,
            token_name,
            ",".join(sorted(scopes)),
            now,
            expires_at,
        ),
    )


def device_login_by_device_code(
    conn: sqlite3.Connection, device_code_hash: bytes
) -> DeviceLogin | None:
    """The request a polling client asks about."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM device_logins WHERE device_code_hash = ?",
        (device_code_hash,),
    ).fetchone()
    return _device_login(row) if row else None


def device_login_by_user_code(conn: sqlite3.Connection, user_code: str) -> DeviceLogin | None:
    """The request a user approves."""
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM device_logins WHERE user_code = ?", (user_code,)
    ).fetchone()
    return _device_login(row) if row else None


def approve_device_login(conn: sqlite3.Connection, login_id: int, user_id: int) -> None:
    """Record who approved the request."""
    conn.execute("UPDATE device_logins SET approved_by = ? WHERE id = ?", (user_id, login_id))


def delete_device_login(conn: sqlite3.Connection, login_id: int) -> None:
    """Forget a used or expired request (its codes are single-use)."""
    conn.execute("DELETE FROM device_logins WHERE id = ?", (login_id,))


def prune_device_logins(conn: sqlite3.Connection, before: float) -> None:
    """Drop requests that expired before ``before`` and old failed approvals."""
    conn.execute("DELETE FROM device_logins WHERE expires_at < ?", (before,))
    conn.execute("DELETE FROM failed_approvals WHERE at < ?", (before,))


def record_failed_approval(conn: sqlite3.Connection, user_id: int, now: float) -> None:
    """Remember a wrong code typed by the user (for rate limiting)."""
    conn.execute("INSERT INTO failed_approvals (user_id, at) VALUES (?, ?)", (user_id, now))


def failed_approvals_since(conn: sqlite3.Connection, user_id: int, since: float) -> int:
    """How many wrong codes the user typed since ``since``."""
    row = conn.execute(
        "SELECT COUNT(*) FROM failed_approvals WHERE user_id = ? AND at >= ?", (user_id, since)
    ).fetchone()
    return int(row[0])


async def pending_device_logins(db: aiosqlite.Connection, now: float) -> list[DeviceLogin]:
    """Requests still waiting for approval, newest first."""
    async with db.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM device_logins"
        " WHERE approved_by IS NULL AND expires_at > ? ORDER BY created_at DESC",
        (now,),
    ) as cur:
        return [_device_login(r) for r in await cur.fetchall()]


# ---------------------------------------------------------------- ssh keys


_SSH_KEY = "SELECT id, fingerprint, public_key, comment, created_at, last_used_at FROM ssh_keys"


def _ssh_key(row: Sequence[Any]) -> SshKeyInfo:
    return SshKeyInfo(
        id=row[0],
        fingerprint=row[1],
        key_type=row[2].split(" ", 1)[0],
        comment=row[3],
        created_at=ts(row[4]),  # type: ignore[arg-type]
        last_used_at=ts(row[5]),
    )


def insert_ssh_key(
    conn: sqlite3.Connection, user_id: int, fingerprint: str, public_key: str, comment: str
) -> SshKeyInfo:
    """Store a key; raises ``sqlite3.IntegrityError`` when any user has it already."""
    cur = conn.execute(
        "INSERT INTO ssh_keys (user_id, fingerprint, public_key, comment, created_at)"
        " VALUES (?, ?, ?, ?, " + _NOW + ")",
        (user_id, fingerprint, public_key, comment),
    )
    return _ssh_key(conn.execute(f"{_SSH_KEY} WHERE id = ?", (cur.lastrowid,)).fetchone())


def delete_ssh_key(conn: sqlite3.Connection, user_id: int, fingerprint: str) -> bool:
    """Remove one of the user's keys; False when they have no such key."""
    cur = conn.execute(
        "DELETE FROM ssh_keys WHERE user_id = ? AND fingerprint = ?", (user_id, fingerprint)
    )
    return cur.rowcount > 0


def delete_ssh_key_by_id(conn: sqlite3.Connection, user_id: int, key_id: int) -> bool:
    """Remove one of the user's keys by id; False when they have no such key."""
    cur = conn.execute("DELETE FROM ssh_keys WHERE user_id = ? AND id = ?", (user_id, key_id))
    return cur.rowcount > 0


def ssh_keys_sync(conn: sqlite3.Connection, user_id: int) -> list[SshKeyInfo]:
    """The user's keys, oldest first (for the CLI)."""
    rows = conn.execute(f"{_SSH_KEY} WHERE user_id = ? ORDER BY id", (user_id,)).fetchall()
    return [_ssh_key(r) for r in rows]


async def ssh_keys_of(db: aiosqlite.Connection, user_id: int) -> list[SshKeyInfo]:
    """The user's keys, oldest first."""
    async with db.execute(f"{_SSH_KEY} WHERE user_id = ? ORDER BY id", (user_id,)) as cur:
        return [_ssh_key(r) for r in await cur.fetchall()]


async def user_of_ssh_key(db: aiosqlite.Connection, fingerprint: str) -> UserAuth | None:
    """Who a key belongs to."""
    async with db.execute(
        "SELECT u.id, u.username, u.password_hash, u.is_admin FROM ssh_keys k"
        " JOIN users u ON u.id = k.user_id WHERE k.fingerprint = ?",
        (fingerprint,),
    ) as cur:
        row = await cur.fetchone()
    return UserAuth(row[0], row[1], row[2], bool(row[3])) if row else None


def touch_ssh_key(conn: sqlite3.Connection, fingerprint: str, now: float) -> None:
    """Record that a key logged in."""
    conn.execute("UPDATE ssh_keys SET last_used_at = ? WHERE fingerprint = ?", (now, fingerprint))


def mark_ssh_session(conn: sqlite3.Connection, session_id: int) -> None:
    """Record that a login session belongs to a TUI served over SSH."""
    conn.execute("INSERT INTO ssh_sessions (session_id) VALUES (?)", (session_id,))


def end_ssh_sessions(conn: sqlite3.Connection) -> int:
    """End every login session made for SSH (left by a server that did not stop cleanly)."""
    cur = conn.execute("DELETE FROM sessions WHERE id IN (SELECT session_id FROM ssh_sessions)")
    return cur.rowcount

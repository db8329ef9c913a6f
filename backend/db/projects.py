"""Projects, their members and invitations, and which experiments each shows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.db.accounts import Principal
from backend.db.common import NOW, next_id, ts
from backend.db.connection import Conn, Reader, Row
from shared.api import Invitation, Members, ProjectRow


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
    conn: Conn,
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
        " VALUES (?, ?, ?, ?, ?, ?, " + NOW + ") RETURNING id",
        (next_id(conn, "projects"), name, repo_url, repo_key, subdir, owner_id),
    )
    project_id = int(cur.fetchone()[0])
    add_member(conn, project_id, owner_id)
    return project_id


def same_project_of(
    conn: Conn, owner_id: int, name: str, repo_key: str, subdir: str | None
) -> int | None:
    """The id of the owner's project of this name for this repository, if there is one."""
    rows = conn.execute(
        "SELECT id, subdir FROM projects WHERE owner_id = ? AND name = ? AND repo_key = ?",
        (owner_id, name, repo_key),
    ).fetchall()
    return next((int(row[0]) for row in rows if row[1] == subdir), None)


def add_member(conn: Conn, project_id: int, user_id: int) -> None:
    """Add a member (no-op when already one), recording the newest event id as they join."""
    conn.execute(
        "INSERT INTO project_members (project_id, user_id, since_event)"
        " VALUES (?, ?, (SELECT COALESCE(MAX(id), 0) FROM events)) ON CONFLICT DO NOTHING",
        (project_id, user_id),
    )


def delete_project(conn: Conn, project_id: int) -> None:
    """Delete a project row (its members, invitations and baselines go with it)."""
    conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))


def record_deletion(conn: Conn, project_id: int, user_id: int, now: float) -> None:
    """Note that ``user_id`` started deleting the project (kept until the project goes)."""
    conn.execute(
        "INSERT INTO project_deletions (project_id, user_id, started_at) VALUES (?, ?, ?)"
        " ON CONFLICT (project_id) DO UPDATE SET user_id = excluded.user_id",
        (project_id, user_id, now),
    )


def forget_deletion(conn: Conn, project_id: int) -> None:
    """Drop the note of a deletion that will not be finished."""
    conn.execute("DELETE FROM project_deletions WHERE project_id = ?", (project_id,))


def unfinished_deletions(conn: Conn) -> list[tuple[int, Principal]]:
    """Project deletions a stopped server left part-way: (project id, who deletes it)."""
    rows = conn.execute(
        "SELECT d.project_id, u.id AS user_id, u.username, u.is_admin"
        " FROM project_deletions d JOIN users u ON u.id = d.user_id ORDER BY d.started_at"
    ).fetchall()
    return [
        (r["project_id"], Principal(r["user_id"], r["username"], bool(r["is_admin"]))) for r in rows
    ]


def project_owner_id(conn: Conn, project_id: int) -> int | None:
    """The owner of a project (``None`` when the owner was deleted)."""
    row = conn.execute("SELECT owner_id FROM projects WHERE id = ?", (project_id,)).fetchone()
    return row["owner_id"] if row else None


_SHOWING = (
    "FROM projects p JOIN project_members m ON m.project_id = p.id"
    " WHERE p.repo_key = ? AND (p.subdir IS NULL OR p.subdir IS ?) AND m.user_id = ?"
)


def project_ids_showing(conn: Conn, repo_key: str, subdir: str | None, poster_id: int) -> list[int]:
    """Projects in which an experiment with these fields is visible."""
    rows = conn.execute(f"SELECT p.id {_SHOWING}", (repo_key, subdir, poster_id)).fetchall()
    return [r["id"] for r in rows]


_PROJECT_ROW = """
    SELECT p.id, p.name, p.repo_url, p.subdir,
        (SELECT username FROM users WHERE id = p.owner_id) AS owner,
        (SELECT COUNT(*) FROM experiments e WHERE e.repo_key = p.repo_key
            AND (p.subdir IS NULL OR e.subdir IS p.subdir)
            AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id))
            AS experiments,
        (SELECT COUNT(*) FROM experiments e WHERE e.repo_key = p.repo_key
            AND (p.subdir IS NULL OR e.subdir IS p.subdir) AND e.status = 'running'
            AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id))
            AS running
    FROM projects p
"""


_PROJECT_FIELDS = ("id", "name", "repo_url", "subdir", "owner", "experiments", "running")


def _project_row(row: Row) -> ProjectRow:
    return ProjectRow(**{key: row[key] for key in _PROJECT_FIELDS})


def project_row_sync(conn: Conn, project_id: int) -> ProjectRow:
    """A project with its counts, inside a write transaction."""
    return _project_row(conn.execute(f"{_PROJECT_ROW} WHERE p.id = ?", (project_id,)).fetchone())


def project_member_ids_sync(conn: Conn, project_id: int) -> tuple[int, ...]:
    """Members of a project."""
    rows = conn.execute(
        "SELECT user_id FROM project_members WHERE project_id = ?", (project_id,)
    ).fetchall()
    return tuple(r["user_id"] for r in rows)


def remove_member(conn: Conn, project_id: int, user_id: int) -> bool:
    """Remove a member; False when they were not one."""
    cur = conn.execute(
        "DELETE FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)
    )
    return cur.rowcount > 0


def invite(conn: Conn, project_id: int, user_id: int, invited_by: int) -> None:
    """Invite a user to a project (again: the invitation is renewed)."""
    conn.execute(
        "INSERT INTO project_invitations (project_id, user_id, invited_by, created_at)"
        " VALUES (?, ?, ?, " + NOW + ") ON CONFLICT (project_id, user_id) DO UPDATE"
        " SET invited_by = excluded.invited_by, created_at = excluded.created_at",
        (project_id, user_id, invited_by),
    )


def invitations_waiting(conn: Conn, user_id: int, invited_by: int) -> int:
    """How many of ``invited_by``'s invitations ``user_id`` has not answered yet."""
    cur = conn.execute(
        "SELECT COUNT(*) FROM project_invitations WHERE user_id = ? AND invited_by = ?",
        (user_id, invited_by),
    )
    return int(cur.fetchone()[0])


def project_identity(conn: Conn, project_id: int) -> tuple[str, str, str | None] | None:
    """A project's (name, repository key, subdir); None: no such project."""
    row = conn.execute(
        "SELECT name, repo_key, subdir FROM projects WHERE id = ?", (project_id,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), row[2])


def set_owner(conn: Conn, project_id: int, owner_id: int) -> bool:
    """Hand a project to another owner; False when there is no such project."""
    cur = conn.execute("UPDATE projects SET owner_id = ? WHERE id = ?", (owner_id, project_id))
    return cur.rowcount > 0


def owned_projects(conn: Conn, owner_id: int) -> int:
    """How many projects ``owner_id`` owns (deleted ones, still being purged, included)."""
    cur = conn.execute("SELECT COUNT(*) FROM projects WHERE owner_id = ?", (owner_id,))
    return int(cur.fetchone()[0])


def drop_invitation(conn: Conn, project_id: int, user_id: int) -> bool:
    """Forget an invitation (accepted, declined or withdrawn); False when there was none."""
    cur = conn.execute(
        "DELETE FROM project_invitations WHERE project_id = ? AND user_id = ?",
        (project_id, user_id),
    )
    return cur.rowcount > 0


_INVITATIONS = """
    SELECT p.id AS project_id, p.name AS project_name, p.repo_url, p.subdir,
        inviter.username AS invited_by, i.created_at
    FROM project_invitations i JOIN projects p ON p.id = i.project_id
    LEFT JOIN users inviter ON inviter.id = i.invited_by
"""


def _invitation(row: Row) -> Invitation:
    return Invitation(
        project_id=row["project_id"],
        project_name=row["project_name"],
        repo_url=row["repo_url"],
        subdir=row["subdir"],
        invited_by=row["invited_by"],
        created_at=ts(row["created_at"]),  # type: ignore[arg-type]
    )


def invitation_sync(conn: Conn, project_id: int, user_id: int) -> Invitation | None:
    """One pending invitation of a user."""
    row = conn.execute(
        f"{_INVITATIONS} WHERE i.project_id = ? AND i.user_id = ?", (project_id, user_id)
    ).fetchone()
    return _invitation(row) if row else None


async def invitations_of(db: Reader, user_id: int) -> list[Invitation]:
    """The invitations waiting for a user's answer, newest first."""
    async with db.execute(
        f"{_INVITATIONS} WHERE i.user_id = ? ORDER BY i.created_at DESC", (user_id,)
    ) as cur:
        return [_invitation(r) for r in await cur.fetchall()]


_MEMBERS = (
    "SELECT u.username, 'member' AS kind FROM project_members m JOIN users u ON u.id = m.user_id"
    " WHERE m.project_id = :p UNION ALL SELECT u.username, 'invited' FROM project_invitations i"
    " JOIN users u ON u.id = i.user_id WHERE i.project_id = :p UNION ALL SELECT u.username,"
    " 'owner' FROM projects p JOIN users u ON u.id = p.owner_id WHERE p.id = :p"
)


def _members(rows: Iterable[Row]) -> Members:
    by_kind: dict[str, list[str]] = {"member": [], "invited": [], "owner": []}
    for row in rows:
        by_kind[row["kind"]].append(row["username"])
    owner = by_kind["owner"]
    return Members(
        owner=owner[0] if owner else None,
        members=sorted(by_kind["member"]),
        invited=sorted(by_kind["invited"]),
    )


def members_of_sync(conn: Conn, project_id: int) -> Members:
    """Owner, members and invited users of a project."""
    return _members(conn.execute(_MEMBERS, {"p": project_id}).fetchall())


async def members_of(db: Reader, project_id: int) -> Members:
    """Owner, members and invited users of a project."""
    async with db.execute(_MEMBERS, {"p": project_id}) as cur:
        return _members(await cur.fetchall())


def owners_showing(conn: Conn, repo_key: str, subdir: str | None, poster_id: int) -> set[int]:
    """Owners of the projects an experiment with these fields shows in."""
    rows = conn.execute(f"SELECT p.owner_id {_SHOWING}", (repo_key, subdir, poster_id)).fetchall()
    return {r["owner_id"] for r in rows if r["owner_id"] is not None}


async def owners_showing_async(
    db: Reader, repo_key: str, subdir: str | None, poster_id: int
) -> set[int]:
    """``owners_showing`` on the read connection."""
    async with db.execute(f"SELECT p.owner_id {_SHOWING}", (repo_key, subdir, poster_id)) as cur:
        rows = await cur.fetchall()
    return {r["owner_id"] for r in rows if r["owner_id"] is not None}


async def projects_of(db: Reader, user_id: int) -> list[ProjectRow]:
    """Every project the user is a member of, with counts."""
    async with db.execute(
        f"{_PROJECT_ROW} WHERE p.id IN (SELECT project_id FROM project_members"
        " WHERE user_id = ?) ORDER BY p.name, p.id",
        (user_id,),
    ) as cur:
        return [_project_row(r) for r in await cur.fetchall()]


async def project_scopes_of(db: Reader, user_id: int) -> list[ProjectScope]:
    """The visibility scope of every project the user is a member of."""
    async with db.execute(
        "SELECT p.id, p.repo_key, p.subdir,"
        " group_concat(m2.user_id || ':' || m2.since_event, ',') AS members"
        " FROM projects p JOIN project_members m ON m.project_id = p.id AND m.user_id = ?"
        " JOIN project_members m2 ON m2.project_id = p.id GROUP BY p.id",
        (user_id,),
    ) as cur:
        rows = await cur.fetchall()
    return [_scope(r) for r in rows]


async def project_scope(db: Reader, project_id: int, user_id: int) -> ProjectScope | None:
    """The project's scope, if the user is a member."""
    async with db.execute(
        "SELECT p.id, p.repo_key, p.subdir,"
        " group_concat(m2.user_id || ':' || m2.since_event, ',') AS members"
        " FROM projects p JOIN project_members m ON m.project_id = p.id AND m.user_id = ?"
        " JOIN project_members m2 ON m2.project_id = p.id WHERE p.id = ? GROUP BY p.id",
        (user_id, project_id),
    ) as cur:
        r = await cur.fetchone()
    return None if r is None else _scope(r)


async def project_scope_any(db: Reader, project_id: int) -> ProjectScope | None:
    """A project's scope, whoever asks (for the server's own watch evaluator)."""
    async with db.execute(
        "SELECT p.id, p.repo_key, p.subdir,"
        " group_concat(m.user_id || ':' || m.since_event, ',') AS members"
        " FROM projects p JOIN project_members m ON m.project_id = p.id WHERE p.id = ?"
        " GROUP BY p.id",
        (project_id,),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else _scope(row)


def _scope(row: Row) -> ProjectScope:
    return ProjectScope(row["id"], row["repo_key"], row["subdir"], _members_since(row["members"]))

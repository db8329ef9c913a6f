"""Storage of watches, their firings (alerts), webhook attempts and per-user baselines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.db.common import next_id, ts
from backend.db.connection import Conn, Reader, Row
from backend.db.experiments import stored_rate
from shared.watches import AlertInfo, Delivery, WatchCondition, WatchCreate, WatchInfo


@dataclass(frozen=True)
class WatchRecord:
    """A watch as the evaluator holds it."""

    id: int
    user_id: int
    project_id: int | None
    experiment_id: int | None
    condition: WatchCondition
    webhook_url: str | None


_COLUMNS = (
    "w.id, w.user_id, w.project_id, w.experiment_id, w.kind, w.metric, w.op, w.threshold,"
    " w.statuses, w.factor, w.webhook_url, w.created_at"
)
_TARGET = (
    "COALESCE((SELECT name FROM experiments WHERE id = w.experiment_id),"
    " (SELECT name FROM projects WHERE id = w.project_id), '?') AS target"
)


def _condition(row: Row) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "metric": row["metric"],
        "op": row["op"],
        "threshold": row["threshold"],
        "statuses": [s for s in row["statuses"].split(",") if s],
        "factor": row["factor"],
    }


def _record(row: Row) -> WatchRecord:
    return WatchRecord(
        id=row["id"],
        user_id=row["user_id"],
        project_id=row["project_id"],
        experiment_id=row["experiment_id"],
        condition=WatchCondition(**_condition(row)),
        webhook_url=row["webhook_url"],
    )


def _info(row: Row) -> WatchInfo:
    return WatchInfo(
        id=row["id"],
        project_id=row["project_id"],
        experiment_id=row["experiment_id"],
        webhook_url=row["webhook_url"],
        created_at=ts(row["created_at"]),  # type: ignore[arg-type]
        target=row["target"],
        **_condition(row),
    )


_WATCH_FIELDS = (
    "project_id, experiment_id, kind, metric, op, threshold, statuses, factor, webhook_url"
)


def _watch_values(watch: WatchCreate) -> tuple[object, ...]:
    """The values of ``_WATCH_FIELDS``, in that order."""
    return (
        watch.project_id,
        watch.experiment_id,
        watch.kind,
        watch.metric,
        watch.op,
        watch.threshold,
        ",".join(watch.statuses),
        watch.factor,
        watch.webhook_url,
    )


def insert_watch(conn: Conn, user_id: int, watch: WatchCreate, now: float) -> int:
    """Store a watch; returns its id."""
    cur = conn.execute(
        f"INSERT INTO watches (id, user_id, {_WATCH_FIELDS}, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (next_id(conn, "watches"), user_id, *_watch_values(watch), now),
    )
    return int(cur.fetchone()[0])


def update_watch(conn: Conn, user_id: int, watch_id: int, watch: WatchCreate) -> bool:
    """Replace one of the user's watches (its firings are forgotten: a new condition
    fires afresh); False when they have no such watch."""
    assignments = ", ".join(f"{name} = ?" for name in _WATCH_FIELDS.split(", "))
    cur = conn.execute(
        f"UPDATE watches SET {assignments} WHERE id = ? AND user_id = ?",
        (*_watch_values(watch), watch_id, user_id),
    )
    if cur.rowcount == 0:
        return False
    conn.execute("DELETE FROM watch_firings WHERE watch_id = ?", (watch_id,))
    return True


def count_watches(conn: Conn, user_id: int) -> int:
    """How many watches the user has."""
    return int(
        conn.execute("SELECT COUNT(*) FROM watches WHERE user_id = ?", (user_id,)).fetchone()[0]
    )


def delete_watches_of(conn: Conn, user_id: int) -> int:
    """Delete every watch of a user (locked out); how many there were."""
    return conn.execute("DELETE FROM watches WHERE user_id = ?", (user_id,)).rowcount


def delete_watch(conn: Conn, user_id: int, watch_id: int) -> bool:
    """Delete one of the user's watches; False when they have no such watch."""
    cur = conn.execute("DELETE FROM watches WHERE id = ? AND user_id = ?", (watch_id, user_id))
    return cur.rowcount > 0


def watch_sync(conn: Conn, watch_id: int) -> WatchRecord | None:
    """One watch, inside a write transaction."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM watches w WHERE w.id = ?", (watch_id,)).fetchone()
    return _record(row) if row else None


def watch_info_sync(conn: Conn, watch_id: int) -> WatchInfo:
    """One watch as the API shows it."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, {_TARGET} FROM watches w WHERE w.id = ?", (watch_id,)
    ).fetchone()
    return _info(row)


async def watches_of(db: Reader, user_id: int) -> list[WatchInfo]:
    """The user's watches, oldest first."""
    async with db.execute(
        f"SELECT {_COLUMNS}, {_TARGET} FROM watches w WHERE w.user_id = ? ORDER BY w.id",
        (user_id,),
    ) as cur:
        return [_info(r) for r in await cur.fetchall()]


async def all_watches(db: Reader) -> list[WatchRecord]:
    """Every watch of every user (what the evaluator holds)."""
    async with db.execute(f"SELECT {_COLUMNS} FROM watches w ORDER BY w.id") as cur:
        return [_record(r) for r in await cur.fetchall()]


# ---------------------------------------------------------------- alerts


_ALERTS = (
    "SELECT a.id, a.watch_id, a.experiment_id, a.experiment_name, a.project_id, a.fired_at,"
    " a.title, a.detail, w.webhook_url IS NOT NULL AS webhook FROM alerts a"
    " LEFT JOIN watches w ON w.id = a.watch_id"
)


def _alert(row: Row, deliveries: list[Delivery]) -> AlertInfo:
    return AlertInfo(
        id=row["id"],
        watch_id=row["watch_id"],
        experiment_id=row["experiment_id"],
        experiment_name=row["experiment_name"],
        project_id=row["project_id"],
        fired_at=ts(row["fired_at"]),  # type: ignore[arg-type]
        title=row["title"],
        detail=row["detail"],
        # A watch deleted since keeps its alerts' delivery logs.
        webhook=bool(row["webhook"]) or bool(deliveries),
        deliveries=deliveries,
    )


def insert_alert(
    conn: Conn,
    *,
    watch: WatchRecord,
    experiment_id: int,
    experiment_name: str,
    project_id: int | None,
    dedupe: str,
    now: float,
    title: str,
    detail: str,
    keep_alerts: int,
) -> AlertInfo | None:
    """Record a firing; None when this watch already fired for this experiment and key.
    The user's alerts beyond the newest ``keep_alerts`` are dropped."""
    first = conn.execute(
        "INSERT INTO watch_firings (watch_id, experiment_id, dedupe) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (watch.id, experiment_id, dedupe),
    )
    if first.rowcount == 0:
        return None
    cur = conn.execute(
        "INSERT INTO alerts (watch_id, user_id, experiment_id, project_id, dedupe,"
        " fired_at, experiment_name, title, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (
            watch.id,
            watch.user_id,
            experiment_id,
            project_id,
            dedupe,
            now,
            experiment_name,
            title,
            detail,
        ),
    )
    row = conn.execute(f"{_ALERTS} WHERE a.id = ?", (cur.fetchone()[0],)).fetchone()
    _prune_alerts_of(conn, watch.user_id, keep_alerts)
    return _alert(row, [])


def record_delivery(
    conn: Conn,
    alert_id: int,
    attempt: int,
    now: float,
    status: int | None,
    error: str | None,
) -> None:
    """Log one attempt to post an alert to its webhook."""
    conn.execute(
        "INSERT INTO webhook_deliveries (alert_id, attempt, at, status, error)"
        " VALUES (?, ?, ?, ?, ?)",
        (alert_id, attempt, now, status, error),
    )


def _prune_alerts_of(conn: Conn, user_id: int, keep: int) -> None:
    """Keep only the user's newest ``keep`` alerts: one index walk, as each alert is made
    (a sweep ranking every user's alerts cost 0.1-0.2 s every few seconds at 100,000)."""
    conn.execute(
        "DELETE FROM alerts WHERE user_id = ? AND id <= (SELECT id FROM alerts"
        " WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (user_id, user_id, keep),
    )


async def alerts_of(db: Reader, user_id: int, limit: int) -> list[AlertInfo]:
    """The user's newest alerts with their webhook attempts, newest first."""
    async with db.execute(
        f"{_ALERTS} WHERE a.user_id = ? ORDER BY a.id DESC LIMIT ?", (user_id, limit)
    ) as cur:
        rows = await cur.fetchall()
    deliveries: dict[int, list[Delivery]] = {}
    if rows:
        ids = [r["id"] for r in rows]
        async with db.execute(
            "SELECT alert_id, attempt, at, status, error FROM webhook_deliveries"
            f" WHERE alert_id IN ({','.join('?' * len(ids))}) ORDER BY id",
            ids,
        ) as cur:
            for alert_id, attempt, at, status, error in await cur.fetchall():
                deliveries.setdefault(alert_id, []).append(
                    Delivery(attempt=attempt, at=ts(at), status=status, error=error)  # type: ignore[arg-type]
                )
    return [_alert(r, deliveries.get(r["id"], [])) for r in rows]


# ---------------------------------------------------------------- visibility for firing


def project_shows(conn: Conn, project_id: int, user_id: int, experiment_id: int) -> bool:
    """Whether the user is a member of the project and it shows the experiment."""
    row = conn.execute(
        "SELECT 1 FROM projects p JOIN experiments e ON e.id = :e"
        " WHERE p.id = :p AND p.repo_key = e.repo_key"
        " AND (p.subdir IS NULL OR e.subdir IS p.subdir)"
        " AND EXISTS (SELECT 1 FROM project_members WHERE project_id = p.id AND user_id = :u)"
        " AND EXISTS (SELECT 1 FROM project_members WHERE project_id = p.id"
        " AND user_id = e.poster_id)",
        {"p": project_id, "u": user_id, "e": experiment_id},
    ).fetchone()
    return row is not None


def first_project_showing(conn: Conn, user_id: int, experiment_id: int) -> int | None:
    """A project of the user's that shows the experiment (the lowest id), if any."""
    row = conn.execute(
        "SELECT MIN(p.id) FROM projects p JOIN experiments e ON e.id = :e"
        " JOIN project_members me ON me.project_id = p.id AND me.user_id = :u"
        " WHERE p.repo_key = e.repo_key AND (p.subdir IS NULL OR e.subdir IS p.subdir)"
        " AND EXISTS (SELECT 1 FROM project_members WHERE project_id = p.id"
        " AND user_id = e.poster_id)",
        {"u": user_id, "e": experiment_id},
    ).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- baselines


def set_baseline(conn: Conn, user_id: int, project_id: int, experiment_id: int) -> None:
    """Pin the user's baseline of a project."""
    conn.execute(
        "INSERT INTO baselines (user_id, project_id, experiment_id) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, project_id) DO UPDATE SET experiment_id = excluded.experiment_id",
        (user_id, project_id, experiment_id),
    )


def clear_baseline(conn: Conn, user_id: int, project_id: int) -> None:
    """Unpin the user's baseline of a project."""
    conn.execute(
        "DELETE FROM baselines WHERE user_id = ? AND project_id = ?", (user_id, project_id)
    )


async def baseline_of(db: Reader, user_id: int, project_id: int) -> int | None:
    """The user's baseline experiment of a project, if pinned."""
    async with db.execute(
        "SELECT experiment_id FROM baselines WHERE user_id = ? AND project_id = ?",
        (user_id, project_id),
    ) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- running experiments


@dataclass(frozen=True)
class RunningRow:
    """What the stalled check needs of a running experiment at start-up."""

    id: int
    name: str
    poster_id: int
    repo_key: str
    subdir: str | None
    step: int | None
    updated_at: float
    steps_per_s: float | None


async def running_experiments(db: Reader) -> list[RunningRow]:
    """Every running experiment, with the step rate its stored API row last showed."""
    async with db.execute(
        "SELECT id, name, poster_id, repo_key, subdir, step, updated_at, row_json"
        " FROM experiments WHERE status = 'running'"
    ) as cur:
        rows = await cur.fetchall()
    return [
        RunningRow(
            id=r["id"],
            name=r["name"],
            poster_id=r["poster_id"],
            repo_key=r["repo_key"],
            subdir=r["subdir"],
            step=r["step"],
            updated_at=r["updated_at"],
            steps_per_s=stored_rate(r["row_json"]),
        )
        for r in rows
    ]

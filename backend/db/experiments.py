"""Experiments: the record the writer keeps, the API row it encodes, visibility."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from backend.db.common import ts
from backend.db.connection import Conn, Reader, Row, is_postgres
from backend.db.projects import ProjectScope, next_id
from shared.api import ExperimentRow
from shared.live import ErrorInfo

_errors_decoder = msgspec.json.Decoder(list[ErrorInfo])
_json_decode = msgspec.json.decode


class _Rate(msgspec.Struct):
    steps_per_s: float | None = None


_rate = msgspec.json.Decoder(_Rate)


def stored_rate(row_json: bytes | None) -> float | None:
    """The step rate an experiment's stored API row last showed (it is kept nowhere else)."""
    return _rate.decode(row_json).steps_per_s if row_json else None


_json_encode = msgspec.json.encode
ROW_VERSION = 2
"""The shape of the encoded API rows stored in ``row_json``: bump it whenever ExperimentRow
changes, and listings rebuild older rows from their columns until they are written again."""
RATE_WINDOW = 60.0
"""Seconds of steps an experiment's ``steps_per_s`` is measured over."""


class BeforeStart(msgspec.Struct):
    """A run as it was before a ``start`` that may be of its name run anew, and what that
    start brought: kept until the next ``data`` tells (``ingest._verdict``)."""

    status: str
    finished_at: float | None
    done_step: int | None
    errors: list[ErrorInfo]
    client: str
    message: str | None
    params: dict[str, Any]
    metrics_step: int | None
    params_step: int | None
    start_params: dict[str, Any]
    """The params the ``start`` carried (``dvc exp run`` sends them there)."""
    updated_at: float | None = None
    subdir: str | None = None
    machine: dict[str, Any] | None = None
    held: bytes | None = None
    """A post after the ``start`` that could not tell what it began, kept (its JSON) until
    the next one does: a step's metrics, sent before its plot rows."""


_before_start_decoder = msgspec.json.Decoder(BeforeStart)


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
    params_step: int | None = None
    """The step whose post last changed the params (an older, late post leaves them)."""
    finished_at: float | None = None
    pushed: bool = False
    errors: list[ErrorInfo] = field(default_factory=list)
    machine: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    before_start: BeforeStart | None = None
    """The run before its latest ``start``, until the next ``data`` tells whether that start
    was of the name run anew (``ingest._set_aside`` gives the earlier run this back)."""
    saved_updated_at: float = 0.0
    """The ``updated_at`` last written to the database (the writer skips no-op writes)."""
    row_json: bytes = b""
    """The encoded API row as last written (what listings and stream events send)."""
    _flat_params: tuple[tuple[Any, ...], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )
    steps_per_s: float | None = None
    """The step rate over the last minute of steps (kept in the API row only)."""
    step_samples: deque[tuple[float, int]] | None = field(default=None, repr=False, compare=False)
    """The (time, step) samples of the last minute (``note_step``), kept by the writer's
    cache across reloads (``WriterCache.recall``)."""

    def note_step(self, now: float) -> None:
        """The run reached a new step: update its rate from (time, step) samples.

        One sample a second over the last minute (the newest replaces a sample younger
        than a second), so the cost is constant however fast the run steps.
        """
        if self.step is None:
            return
        samples = self.step_samples
        if samples is None:
            samples = self.step_samples = deque(maxlen=int(RATE_WINDOW) + 2)
        if len(samples) >= 2 and now - samples[-2][0] < 1.0:
            samples[-1] = (now, self.step)
        else:
            samples.append((now, self.step))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        (t0, s0), (t1, s1) = samples[0], samples[-1]
        if t1 > t0 and s1 > s0:
            self.steps_per_s = float(f"{(s1 - s0) / (t1 - t0):.4g}")

    def forget_rate(self) -> None:
        """The run starts over (resumed): its rate is measured anew from its next steps."""
        self.steps_per_s = None
        # Empty, not None: the writer's cache keeps these, and must drop the old ones.
        self.step_samples = deque(maxlen=int(RATE_WINDOW) + 2)

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
    " params_step, finished_at, pushed, errors, machine, params, metrics, before_start,"
    " row_json"
)


_PLAIN = (
    "id",
    "poster_id",
    "repo_key",
    "repo_url",
    "baseline_sha",
    "name",
    "client",
    "status",
    "started_at",
    "updated_at",
    "message",
    "subdir",
    "experiment_rev",
    "step",
    "done_step",
    "metrics_step",
    "params_step",
    "finished_at",
)
"""Columns stored as the record holds them (the rest are JSON or flags)."""


def _record(row: Row) -> ExperimentRecord:
    machine = row["machine"]
    return ExperimentRecord(
        **{column: row[column] for column in _PLAIN},
        pushed=bool(row["pushed"]),
        errors=_errors_decoder.decode(row["errors"]),
        machine=_json_decode(machine) if machine else None,
        params=_json_decode(row["params"]),
        metrics=_json_decode(row["metrics"]),
        before_start=(
            _before_start_decoder.decode(row["before_start"]) if row["before_start"] else None
        ),
        saved_updated_at=row["updated_at"],
        # Kept nowhere else: a record read again (the writer's cache dropped after another
        # job) showed every running run's rate as unknown until it had stepped twice more.
        steps_per_s=stored_rate(row["row_json"]),
    )


def find_experiment(
    conn: Conn, poster_id: int, repo_key: str, baseline_sha: str, name: str
) -> ExperimentRecord | None:
    """The poster's experiment with this identity, if it exists."""
    row = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments"
        " WHERE poster_id = ? AND repo_key = ? AND baseline_sha = ? AND name = ?",
        (poster_id, repo_key, baseline_sha, name),
    ).fetchone()
    return _record(row) if row else None


def experiments_begun_since(
    conn: Conn, poster_id: int, repo_key: str, baseline_sha: str, since: float, limit: int
) -> list[ExperimentRecord]:
    """Up to ``limit`` of the poster's experiments of this commit begun at ``since`` or
    later, whatever their names."""
    rows = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments WHERE poster_id = ? AND repo_key = ?"
        " AND baseline_sha = ? AND started_at >= ? LIMIT ?",
        (poster_id, repo_key, baseline_sha, since, limit),
    ).fetchall()
    return [_record(row) for row in rows]


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
        r.params_step,
        r.finished_at,
        int(r.pushed),
        _json_encode(r.errors),
        _json_encode(r.machine) if r.machine is not None else None,
        _json_encode(r.params),
        _json_encode(r.metrics),
        _json_encode(r.before_start) if r.before_start is not None else None,
    )


_MUTABLE = (
    "client, status, started_at, updated_at, message, subdir, experiment_rev, step,"
    " done_step, metrics_step, params_step, finished_at, pushed, errors, machine, params,"
    " metrics, before_start"
)


def insert_experiment(conn: Conn, r: ExperimentRecord) -> int:
    """Store a new experiment; returns its id (and sets it on ``r``)."""
    cur = conn.execute(
        "INSERT INTO experiments (id, poster_id, repo_key, repo_url, baseline_sha, name,"
        f" {_MUTABLE}) VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * 18)}) RETURNING id",
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
    r.id = int(cur.fetchone()[0])
    _store_row_json(conn, r)
    return r.id


_UPDATE_EXPERIMENT = (
    "UPDATE experiments SET "
    + ", ".join(f"{c.strip()} = ?" for c in _MUTABLE.split(","))
    + f", row_json = ?, row_version = {ROW_VERSION} WHERE id = ?"
)


def update_experiment(conn: Conn, r: ExperimentRecord) -> None:
    """Write every mutable field of an experiment back, with its encoded API row."""
    _encode_row(r)
    conn.execute(_UPDATE_EXPERIMENT, (*_values(r), r.row_json, r.id))


def last_set_aside(
    conn: Conn, poster_id: int, repo_key: str, baseline_sha: str, name: str, max_name: int
) -> int:
    """The highest ``n`` of the poster's ``name (n)`` runs of that commit (0: none), in one
    query however many there were; a name too long for its number had its end cut."""
    stem = name[: max_name - 12]  # (what every ``name (n)`` begins with, n of ten digits)
    rows = conn.execute(
        "SELECT name FROM experiments WHERE poster_id = ? AND repo_key = ?"
        " AND baseline_sha = ? AND substr(name, 1, ?) = ?",
        (poster_id, repo_key, baseline_sha, len(stem), stem),
    ).fetchall()
    highest = 0
    for row in rows:
        found = row[0]
        number = _SET_ASIDE.search(found)
        if number is not None:
            suffix = number.group(0)
            if found == name[: max_name - len(suffix)] + suffix:
                highest = max(highest, int(number.group(1)))
    return highest


_SET_ASIDE = re.compile(r" \(([0-9]{1,10})\)$")


def rename_experiment(conn: Conn, r: ExperimentRecord) -> None:
    """Write an experiment back under its new name (``update_experiment`` keeps names)."""
    conn.execute("UPDATE experiments SET name = ? WHERE id = ?", (r.name, r.id))
    update_experiment(conn, r)


_UPDATE_PROGRESS = (
    "UPDATE experiments SET updated_at = ?, step = ?, metrics_step = ?, metrics = ?,"
    f" row_json = ?, row_version = {ROW_VERSION} WHERE id = ?"
)


def update_experiment_progress(conn: Conn, r: ExperimentRecord) -> None:
    """Write only what a training step changes (step, metrics, updated_at) and the API row.

    Most posts change nothing else; leaving status out also spares its index a write.
    """
    _encode_row(r)
    conn.execute(
        _UPDATE_PROGRESS,
        (r.updated_at, r.step, r.metrics_step, _json_encode(r.metrics), r.row_json, r.id),
    )


def update_experiments_progress(conn: Conn, records: list[ExperimentRecord]) -> None:
    """``update_experiment_progress`` for several experiments in one statement."""
    for r in records:
        _encode_row(r)
    conn.executemany(
        _UPDATE_PROGRESS,
        [
            (r.updated_at, r.step, r.metrics_step, _json_encode(r.metrics), r.row_json, r.id)
            for r in records
        ],
    )


def _encode_row(r: ExperimentRecord) -> None:
    """Encode the API row once per write; listings and stream events send these bytes."""
    r.row_json = _json_encode(r.to_row())


def _store_row_json(conn: Conn, r: ExperimentRecord) -> None:
    _encode_row(r)
    conn.execute(
        f"UPDATE experiments SET row_json = ?, row_version = {ROW_VERSION} WHERE id = ?",
        (r.row_json, r.id),
    )


def reencode_old_rows(conn: Conn, at_most: int) -> int:
    """Store the API row again for up to ``at_most`` experiments whose stored row is of an
    older shape (``ROW_VERSION``) or missing; returns how many."""
    rows = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments"
        f" WHERE row_version != {ROW_VERSION} OR row_json IS NULL LIMIT ?",
        (at_most,),
    ).fetchall()
    for row in rows:
        _store_row_json(conn, _record(row))
    return len(rows)


def stale_experiments(conn: Conn, cutoff: float, limit: int) -> list[ExperimentRecord]:
    """At most ``limit`` running experiments silent since before ``cutoff``, longest first."""
    rows = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments"
        " WHERE status = 'running' AND updated_at < ? ORDER BY updated_at LIMIT ?",
        (cutoff, limit),
    ).fetchall()
    return [_record(r) for r in rows]


def delete_experiment(conn: Conn, experiment_id: int) -> None:
    """Delete an experiment with its series and images."""
    conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))


def experiments_by_ids(conn: Conn, ids: list[int], at_most: int) -> list[ExperimentRecord]:
    """Up to ``at_most`` of these experiments that still exist, lowest ids first."""
    found: list[ExperimentRecord] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(
            f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments"
            f" WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id LIMIT ?",
            (*chunk, at_most - len(found)),
        ).fetchall()
        found += [_record(row) for row in rows]
        if len(found) >= at_most:
            break
    return found


def experiments_only_shown_by(conn: Conn, project_id: int) -> list[ExperimentRecord]:
    """The runs a project shows that no other project shows (to anyone: a run shows only
    in projects its poster is a member of)."""
    rows = conn.execute(
        f"SELECT {', '.join('e.' + c.strip() for c in _EXPERIMENT_COLUMNS.split(','))}"
        " FROM experiments e JOIN projects p ON p.id = ?"
        " WHERE e.repo_key = p.repo_key AND (p.subdir IS NULL OR e.subdir IS p.subdir)"
        "   AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id)"
        "   AND NOT EXISTS (SELECT 1 FROM projects o JOIN project_members om"
        "         ON om.project_id = o.id AND om.user_id = e.poster_id"
        "       WHERE o.id != p.id AND o.repo_key = e.repo_key"
        "         AND (o.subdir IS NULL OR e.subdir IS o.subdir))",
        (project_id,),
    ).fetchall()
    return [_record(row) for row in rows]


_VISIBLE_TO = """
    EXISTS (SELECT 1 FROM projects p JOIN project_members me
                ON me.project_id = p.id AND me.user_id = :user
            WHERE p.repo_key = e.repo_key AND (p.subdir IS NULL OR e.subdir IS p.subdir)
              AND e.poster_id IN (SELECT user_id FROM project_members WHERE project_id = p.id))
"""


async def experiment_visible(
    db: Reader, experiment_id: int, user_id: int
) -> ExperimentRecord | None:
    """An experiment, if the user can see it in one of their projects."""
    async with db.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = :id AND {_VISIBLE_TO}",
        {"id": experiment_id, "user": user_id},
    ) as cur:
        row = await cur.fetchone()
    return _record(row) if row else None


def experiment_visible_sync(
    conn: Conn, experiment_id: int, user_id: int
) -> ExperimentRecord | None:
    """Same as :func:`experiment_visible`, inside a write transaction."""
    row = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments e WHERE e.id = :id AND {_VISIBLE_TO}",
        {"id": experiment_id, "user": user_id},
    ).fetchone()
    return _record(row) if row else None


async def experiment_rows_json(db: Reader, scope: ProjectScope, status: str | None) -> bytes:
    """The project's experiment rows as one JSON array, from the stored encodings.

    The database joins the stored encodings itself: a 10,000-row project is then one
    result row instead of 10,000 row objects built in Python (SPEC §10: under 100 ms).
    Rows stored in an older shape (or none) are rebuilt one by one, only when there are any.
    """
    members = sorted(scope.member_ids)
    where = f" WHERE e.repo_key = ? AND e.poster_id IN ({','.join('?' * len(members))})"
    args: list[Any] = [scope.repo_key, *members]
    if scope.subdir is not None:
        where += " AND e.subdir IS ?"
        args.append(scope.subdir)
    if status is not None:
        where += " AND e.status = ?"
        args.append(status)
    order = " ORDER BY e.started_at DESC, e.id DESC"
    fresh = f"sum(CASE WHEN row_version = {ROW_VERSION} AND row_json IS NOT NULL THEN 1 ELSE 0 END)"
    if is_postgres(db):
        joined = f"string_agg(row_json, ','::bytea{order})"
        sql = f"SELECT {joined}, count(*), {fresh} FROM experiments e{where}"
    else:
        # An aggregate over an ordered subquery reads it in that order (SQLite does not
        # flatten a subquery with ORDER BY into an aggregate).
        sql = (
            f"SELECT CAST(group_concat(row_json, ',') AS BLOB), count(*), {fresh}"
            f" FROM (SELECT row_json, row_version FROM experiments e{where}{order})"
        )
    async with db.execute(sql, args) as cur:
        joined_rows, count, fresh_count = await cur.fetchone()
    if count == 0:
        return b"[]"
    if fresh_count == count:
        return b"[" + bytes(joined_rows) + b"]"
    async with db.execute(
        f"SELECT row_version, {_EXPERIMENT_COLUMNS} FROM experiments e{where}{order}",
        args,
    ) as cur:
        rows = await cur.fetchall()
    encoded = [
        r["row_json"]
        if r["row_version"] == ROW_VERSION and r["row_json"] is not None
        else _json_encode(_record(r).to_row())
        for r in rows
    ]
    return b"[" + b",".join(encoded) + b"]"


def experiment_name(conn: Conn, experiment_id: int) -> str | None:
    """An experiment's name, if it exists."""
    row = conn.execute("SELECT name FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
    return row["name"] if row else None

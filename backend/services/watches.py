"""Watches, alerts and baselines: what each user keeps for themselves (SPEC §2 rules).

A watch, its alerts and a baseline belong to one user: nobody else sees them (404, as for
projects). A watch or baseline names an experiment or a project the user can see now; a
firing is checked again against what they can see when it fires (``watcher``). Creating
and deleting them needs a login session; an access token with ``EXPERIMENTS`` may read.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from backend.db import repository
from backend.db import watches as store
from backend.db.connection import Reader
from backend.db.repository import Principal
from backend.db.writer import WriteContext
from backend.services import accounts, events, webhooks
from backend.services.errors import Conflict, InvalidInput, NotFound
from backend.services.projects import scope_for
from shared.text import control_problem
from shared.watches import (
    DEFAULT_STALL_FACTOR,
    STALL_FACTORS,
    AlertInfo,
    Baseline,
    WatchCreate,
    WatchInfo,
    webhook_url_problem,
)

MAX_WATCHES = 100
"""Watches one user may have (each is evaluated against every matching post)."""
MAX_ALERTS_LISTED = 200
KEEP_ALERTS = 1_000
"""Alerts kept per user; older ones are pruned by the sweeper."""


def _normalised(watch: WatchCreate, allow_private: bool) -> WatchCreate:
    """The watch with only the fields its kind uses; ``InvalidInput`` names what is wrong."""
    if (watch.experiment_id is None) == (watch.project_id is None):
        raise InvalidInput("A watch needs exactly one of `experiment_id` or `project_id`.")
    if watch.metric is not None:
        problem = control_problem("The metric name", watch.metric)
        if problem is not None:
            raise InvalidInput(f"{problem}; send plain text.")
    common = {
        "kind": watch.kind,
        "experiment_id": watch.experiment_id,
        "project_id": watch.project_id,
        "webhook_url": _checked_url(watch.webhook_url, allow_private),
    }
    if watch.kind == "status":
        statuses = sorted(set(watch.statuses or ["failed"]))
        return WatchCreate(**common, statuses=statuses)  # type: ignore[arg-type]
    if watch.kind == "nonfinite":
        return WatchCreate(**common, metric=watch.metric)  # type: ignore[arg-type]
    if watch.kind == "threshold":
        if watch.metric is None or watch.op is None or watch.threshold is None:
            raise InvalidInput(
                "A threshold watch needs `metric`, `op` (<, <=, >, >=) and `threshold`,"
                " as in val/loss < 0.1."
            )
        if not math.isfinite(watch.threshold):
            raise InvalidInput("`threshold` must be a finite number.")
        return WatchCreate(
            **common,  # type: ignore[arg-type]
            metric=watch.metric,
            op=watch.op,
            threshold=watch.threshold,
        )
    factor = DEFAULT_STALL_FACTOR if watch.factor is None else watch.factor
    low, high = STALL_FACTORS
    if not low <= factor <= high:
        raise InvalidInput(f"`factor` must be between {low:g} and {high:g} (times the interval).")
    return WatchCreate(**common, factor=factor)  # type: ignore[arg-type]


def _checked_url(url: str | None, allow_private: bool) -> str | None:
    if url is None or not url.strip():
        return None
    problem = webhook_url_problem(url.strip())
    if problem is not None:
        raise InvalidInput(problem)
    # Refused now, not at the first alert: a host that is by itself an address the server
    # will not post to (names are judged only when posting: no DNS look-up from here).
    host = None if allow_private else webhooks.literal_refusal(url.strip())
    if host is not None:
        raise InvalidInput(
            f"The webhook's host {host} is not a public address, and this server posts only"
            " to public ones (its admin can set LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE=1 to allow"
            " internal hosts)."
        )
    return url.strip()


def changed(ctx: WriteContext, user_id: int) -> None:
    """Tell every server process the user's watches changed (the evaluator reloads)."""
    ctx.emit(repository.NewEvent(kind="watches", data=b"{}", member_ids=(user_id,)))


def create_job(
    user: Principal, watch: WatchCreate, now: Callable[[], float], allow_private: bool = False
) -> Callable[[WriteContext], WatchInfo]:
    """Store a watch on an experiment or project the user can see (``allow_private``: the
    server's ``webhook_allow_private``)."""
    watch = _normalised(watch, allow_private)

    def job(ctx: WriteContext) -> WatchInfo:
        accounts.check_still_logged_in(ctx, user.session_id)  # (a lock meanwhile)
        _check_target(ctx, user, watch)
        if store.count_watches(ctx.conn, user.user_id) >= MAX_WATCHES:
            raise Conflict(f"You have {MAX_WATCHES} watches already; delete one first.")
        watch_id = store.insert_watch(ctx.conn, user.user_id, watch, now())
        changed(ctx, user.user_id)
        return store.watch_info_sync(ctx.conn, watch_id)

    return job


def _check_target(ctx: WriteContext, user: Principal, watch: WatchCreate) -> None:
    """The watched experiment or project must be one the user can see now."""
    if watch.experiment_id is not None:
        seen = repository.experiment_visible_sync(ctx.conn, watch.experiment_id, user.user_id)
        if seen is None:
            raise NotFound(
                f"Experiment {watch.experiment_id} does not exist or is not in any of"
                " your projects."
            )
    elif user.user_id not in repository.project_member_ids_sync(ctx.conn, watch.project_id or 0):
        raise NotFound(f"Project {watch.project_id} does not exist or you are not a member of it.")


def replace_job(
    user: Principal, watch_id: int, watch: WatchCreate, allow_private: bool = False
) -> Callable[[WriteContext], WatchInfo]:
    """Change one of the user's watches in place (same id; it fires afresh)."""
    watch = _normalised(watch, allow_private)

    def job(ctx: WriteContext) -> WatchInfo:
        accounts.check_still_logged_in(ctx, user.session_id)  # (a lock meanwhile)
        _check_target(ctx, user, watch)
        if not store.update_watch(ctx.conn, user.user_id, watch_id, watch):
            raise NotFound(f"You have no watch {watch_id}.")
        changed(ctx, user.user_id)
        return store.watch_info_sync(ctx.conn, watch_id)

    return job


def delete_job(user: Principal, watch_id: int) -> Callable[[WriteContext], None]:
    """Delete one of the user's watches (its past alerts stay in their list)."""

    def job(ctx: WriteContext) -> None:
        if not store.delete_watch(ctx.conn, user.user_id, watch_id):
            raise NotFound(f"You have no watch {watch_id}.")
        changed(ctx, user.user_id)

    return job


async def list_watches(db: Reader, user: Principal) -> list[WatchInfo]:
    """The user's watches."""
    return await store.watches_of(db, user.user_id)


async def list_alerts(db: Reader, user: Principal, limit: int) -> list[AlertInfo]:
    """The user's newest alerts, with their webhook attempts."""
    if not 1 <= limit <= MAX_ALERTS_LISTED:
        raise InvalidInput(f"limit must be between 1 and {MAX_ALERTS_LISTED}.")
    return await store.alerts_of(db, user.user_id, limit)


# ---------------------------------------------------------------- baselines


async def baseline(db: Reader, user: Principal, project_id: int) -> Baseline:
    """The user's baseline of a project they are a member of."""
    scope = await scope_for(db, user, project_id)
    experiment_id = await store.baseline_of(db, user.user_id, project_id)
    if experiment_id is not None:
        record = await repository.experiment_visible(db, experiment_id, user.user_id)
        if record is None or not scope.shows(record.repo_key, record.subdir, record.poster_id):
            experiment_id = None  # its poster left the project: it no longer shows there
    return Baseline(experiment_id)


def set_baseline_job(
    user: Principal, project_id: int, experiment_id: int | None
) -> Callable[[WriteContext], Baseline]:
    """Pin (or, with None, unpin) the user's baseline of a project."""

    def job(ctx: WriteContext) -> Baseline:
        if user.user_id not in repository.project_member_ids_sync(ctx.conn, project_id):
            raise NotFound(f"Project {project_id} does not exist or you are not a member of it.")
        if experiment_id is None:
            store.clear_baseline(ctx.conn, user.user_id, project_id)
        elif not store.project_shows(ctx.conn, project_id, user.user_id, experiment_id):
            raise NotFound(f"Project {project_id} shows no experiment {experiment_id}.")
        else:
            store.set_baseline(ctx.conn, user.user_id, project_id, experiment_id)
        # The user's other sessions (another terminal, another server process) show it.
        events.baseline_changed(ctx, user.user_id, project_id, experiment_id)
        return Baseline(experiment_id)

    return job


def alert_json(alert: AlertInfo) -> bytes:
    """An alert as its stream event carries it."""
    return msgspec.json.encode(alert)

"""Experiment status rules (SPEC §3) as pure functions of the stored record and an event.

Events can arrive late and more than once. A ``data`` post for a step the run had
already reached when ``done`` arrived is a late duplicate (DVCLive re-sends the last step
on ``end()``, a retry can overtake) and does not resume the run; a new step, a ``start``
or anything for a Stopped run does.
"""

from __future__ import annotations

from backend.db.repository import BeforeStart, ExperimentRecord
from shared.live import DataEvent, DoneEvent, LiveEvent, StartEvent

MARKED_FAILED = "MarkedFailed"
"""The error class of a run marked Failed by hand (its last error)."""


def resumes(record: ExperimentRecord, event: LiveEvent) -> bool:
    """Whether this event makes a finished or stopped experiment Running again."""
    if record.status == "running" or isinstance(event, DoneEvent):
        return False
    if isinstance(event, StartEvent) or record.status == "stopped":
        return True
    assert isinstance(event, DataEvent)
    return record.done_step is None or event.step > record.done_step


def finish(record: ExperimentRecord, event: DoneEvent, now: float) -> None:
    """Apply a ``done``: Completed, or Failed on errors or a ``dvc`` run without a rev."""
    failed = bool(event.errors) or (event.client == "dvc" and event.experiment_rev is None)
    status = "failed" if failed else "completed"
    done_step = record.step if record.step is not None else -1
    # A re-sent done (DVCLive retries, duplicates) is the same end: it keeps its time.
    if not (record.status == status and record.done_step == done_step and record.finished_at):
        record.finished_at = now
    record.status = status
    record.done_step = done_step
    if event.experiment_rev is not None:
        record.experiment_rev = event.experiment_rev.lower()


def resume(record: ExperimentRecord) -> None:
    """Make the experiment Running again.

    The failure it ended with (a ``done`` with errors, a mark by hand) was the previous
    attempt's: the details screen would show it as the reason of a run still going. So was
    its step rate: kept, the pause would read as a stall (and fire stall watches) until
    the run had stepped twice more.
    """
    record.status = "running"
    record.errors = []
    record.finished_at = None
    record.done_step = None
    record.forget_rate()


def before_start(record: ExperimentRecord, start: StartEvent) -> BeforeStart:
    """What ``restore`` gives an earlier run back if ``start`` was of its name run anew."""
    return BeforeStart(
        status=record.status,
        finished_at=record.finished_at,
        done_step=record.done_step,
        errors=list(record.errors),
        client=record.client,
        message=record.message,
        params=dict(record.params),  # (a start's params are merged in: not into this)
        metrics_step=record.metrics_step,
        params_step=record.params_step,
        start_params=dict(start.params or {}),
        updated_at=record.updated_at,
        subdir=record.subdir,
        machine=record.machine,
    )


def restore(record: ExperimentRecord, kept: BeforeStart, now: float) -> None:
    """Give the earlier run of a name run anew what the new run's ``start`` changed: its
    end (Stopped if it had none: killed, it never ended), client, message, params, sub-
    project and machine."""
    if kept.status == "running":
        record.status = "running"  # (so that mark_stopped marks it)
        mark_stopped(record, now)
    else:
        record.status = kept.status
        record.finished_at = kept.finished_at
        record.done_step = kept.done_step
        record.errors = list(kept.errors)
    record.client, record.message = kept.client, kept.message
    if kept.updated_at is not None:  # (its last post's time, not the new run's start)
        record.updated_at = min(record.updated_at, kept.updated_at)
    record.params = kept.params
    record.subdir, record.machine = kept.subdir, kept.machine
    record.metrics_step, record.params_step = kept.metrics_step, kept.params_step


def mark_stopped(record: ExperimentRecord, now: float) -> None:
    """A Running experiment went silent for too long."""
    record.status = "stopped"
    record.finished_at = now

"""Turning an event stream into messages for a screen (used by every live screen)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec
from textual import log
from textual.message import Message
from textual.message_pump import MessagePump

from shared.api import ExperimentRow, Invitation, PointsEvent, ProjectRow
from shared.watches import AlertInfo
from tui.client import Api, StreamEvent, StreamState
from tui.messages import (
    AlertArrived,
    BaselineChanged,
    ConnectionChanged,
    ExperimentChanged,
    ExperimentDeleted,
    InvitationArrived,
    InvitationClosed,
    PointsArrived,
    ProjectChanged,
    ProjectDeleted,
    StreamReset,
)


async def pump_events(api: Api, path: str, targets: Callable[[], Iterable[MessagePump]]) -> None:
    """Follow ``path`` forever, posting one message per event to each of ``targets()``.

    Messages are made afresh for every target (a message is delivered once); decoding is
    done once per event whatever the number of targets.
    """
    async for item in api.events(path):
        try:
            make = _messages(item)
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
            # One bad event must not end the stream: skip it, and refetch what it carried.
            log.warning(f"skipped a bad event: {exc}")
            make = StreamReset
        if make is None:
            continue
        for target in targets():
            target.post_message(make())


def _messages(item: StreamEvent | StreamState) -> Callable[[], Message] | None:
    if not isinstance(item, StreamEvent):
        return lambda: ConnectionChanged(item)
    if item.kind == "experiment":
        row = item.decode(ExperimentRow)
        return lambda: ExperimentChanged(row)
    if item.kind == "points":
        points = item.decode(PointsEvent)
        return lambda: PointsArrived(points.experiment_id, points.series, points.images)
    if item.kind == "deleted":
        experiment_id = item.decode()["experiment_id"]
        return lambda: ExperimentDeleted(experiment_id)
    if item.kind == "project_deleted":
        project_id = item.decode()["project_id"]
        return lambda: ProjectDeleted(project_id)
    if item.kind == "project":
        project = item.decode(ProjectRow)
        return lambda: ProjectChanged(project)
    if item.kind == "invitation":
        invitation = item.decode(Invitation)
        return lambda: InvitationArrived(invitation)
    if item.kind == "invitation_closed":
        closed = item.decode()["project_id"]
        return lambda: InvitationClosed(closed)
    if item.kind == "alert":
        alert = item.decode(AlertInfo)
        return lambda: AlertArrived(alert)
    if item.kind == "baseline":
        project_id = item.decode()["project_id"]
        return lambda: BaselineChanged(project_id)
    if item.kind == "reset":
        return StreamReset
    return None

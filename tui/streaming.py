"""Turning an event stream into messages for a screen (used by every live screen)."""

from __future__ import annotations

from textual.message_pump import MessagePump

from shared.api import ExperimentRow, PointsEvent, ProjectRow
from tui.client import Api, StreamEvent
from tui.messages import (
    ConnectionChanged,
    ExperimentChanged,
    ExperimentDeleted,
    PointsArrived,
    ProjectChanged,
    ProjectDeleted,
    StreamReset,
)


async def pump_events(api: Api, path: str, target: MessagePump) -> None:
    """Follow ``path`` forever, posting one message per event to ``target``."""
    async for item in api.events(path):
        if not isinstance(item, StreamEvent):
            target.post_message(ConnectionChanged(item))
            continue
        if item.kind == "experiment":
            target.post_message(ExperimentChanged(item.decode(ExperimentRow)))
        elif item.kind == "points":
            points = item.decode(PointsEvent)
            target.post_message(PointsArrived(points.experiment_id, points.series))
        elif item.kind == "deleted":
            target.post_message(ExperimentDeleted(item.decode()["experiment_id"]))
        elif item.kind == "project_deleted":
            target.post_message(ProjectDeleted(item.decode()["project_id"]))
        elif item.kind == "project":
            target.post_message(ProjectChanged(item.decode(ProjectRow)))
        elif item.kind == "reset":
            target.post_message(StreamReset())

"""Messages the workers post to screens: data flows up, rendering happens on the screen."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from shared.api import ExperimentRow, Invitation, ProjectRow
from shared.watches import AlertInfo
from tui.client import StreamState


class SnapshotLoaded(Message):
    """The experiment list of a project was (re)fetched."""

    def __init__(self, rows: list[ExperimentRow]) -> None:
        super().__init__()
        self.rows = rows


class ExperimentChanged(Message):
    """A full row arrived on the stream."""

    def __init__(self, row: ExperimentRow) -> None:
        super().__init__()
        self.row = row

    def can_replace(self, message: Message) -> bool:
        # A burst of rows for one experiment collapses into its newest row.
        return isinstance(message, ExperimentChanged) and message.row.id == self.row.id


class PointsArrived(Message):
    """New series rows of one experiment, and the images it just stored (path → step)."""

    def __init__(
        self,
        experiment_id: int,
        series: dict[str, list[Any]],
        images: dict[str, int | None] | None = None,
    ) -> None:
        super().__init__()
        self.experiment_id = experiment_id
        self.series = series
        self.images = images or {}


class ExperimentDeleted(Message):
    """An experiment is gone."""

    def __init__(self, experiment_id: int) -> None:
        super().__init__()
        self.experiment_id = experiment_id


class ProjectChanged(Message):
    """A project row with fresh counts."""

    def __init__(self, project: ProjectRow) -> None:
        super().__init__()
        self.project = project


class ProjectDeleted(Message):
    """A project is gone."""

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id


class StreamReset(Message):
    """The server says we missed too much: refetch."""


class ConnectionChanged(Message):
    """The event stream connected or is reconnecting."""

    def __init__(self, state: StreamState) -> None:
        super().__init__()
        self.state = state


class InvitationArrived(Message):
    """Someone invited the user to a project."""

    def __init__(self, invitation: Invitation) -> None:
        super().__init__()
        self.invitation = invitation


class InvitationClosed(Message):
    """An invitation to the user no longer waits (declined elsewhere, or withdrawn)."""

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id


class AlertArrived(Message):
    """One of my watches fired."""

    def __init__(self, alert: AlertInfo) -> None:
        super().__init__()
        self.alert = alert


class BaselineChanged(Message):
    """My baseline of a project is another (pinned in another session or terminal)."""

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id

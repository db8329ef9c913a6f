"""The list of projects, with experiment and running counts, updated live."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer

from shared.api import ProjectRow
from tui.client import ApiError
from tui.messages import ProjectChanged, ProjectDeleted, StreamReset
from tui.screens.base import LiveScreen
from tui.widgets.status_bar import StatusBar


class ProjectsScreen(LiveScreen):
    """Pick a project; counts follow the all-projects event stream."""

    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("t", "profile", "Profile"),
        Binding("r", "refresh", "Refresh"),
        Binding("q", "app.quit", "Quit"),
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[int, ProjectRow] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar()
        table: DataTable[str] = DataTable(cursor_type="row", id="projects")
        table.add_column("project", key="name")
        table.add_column("repository", key="repo")
        table.add_column("experiments", key="experiments")
        table.add_column("running", key="running")
        yield table
        yield Footer()

    place = "projects"

    def on_mount(self) -> None:
        self.query_one(StatusBar).show_live = True

    @work(group="projects", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        try:
            rows = await self.app.api.projects()  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        for row in rows:
            self._show(row)
        if not rows:
            self.notify("No projects yet: point DVCLive at this server and they appear here.")

    def _show(self, row: ProjectRow) -> None:
        table = self.query_one(DataTable)
        key = str(row.id)
        self.projects[row.id] = row
        cells = (row.name, row.repo_url, str(row.experiments), str(row.running))
        if key in table.rows:
            for column, value in zip(
                ("name", "repo", "experiments", "running"), cells, strict=True
            ):
                table.update_cell(key, column, value)
        else:
            table.add_row(*cells, key=key)
        self.query_one(StatusBar).running = sum(p.running for p in self.projects.values())

    @on(ProjectChanged)
    def project_changed(self, message: ProjectChanged) -> None:
        self._show(message.project)

    @on(ProjectDeleted)
    def project_deleted(self, message: ProjectDeleted) -> None:
        self.projects.pop(message.project_id, None)
        table = self.query_one(DataTable)
        if str(message.project_id) in table.rows:
            table.remove_row(str(message.project_id))
        self.query_one(StatusBar).running = sum(p.running for p in self.projects.values())

    @on(StreamReset)
    def reset(self) -> None:
        self.load()

    def connection_changed(self, connected: bool) -> None:
        if connected:
            self.load()

    @on(DataTable.RowSelected)
    def selected(self, event: DataTable.RowSelected) -> None:
        self._open(int(str(event.row_key.value)))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
            self._open(int(str(key.value)))

    def _open(self, project_id: int) -> None:
        from tui.screens.project import ProjectScreen

        self.app.push_screen(ProjectScreen(self.projects[project_id]))

    def action_profile(self) -> None:
        from tui.screens.profile import ProfileScreen

        self.app.push_screen(ProfileScreen())

    def action_refresh(self) -> None:
        self.load()

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

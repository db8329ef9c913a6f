"""The list of projects, with experiment and running counts, and invitations, updated live."""

from __future__ import annotations

from collections import defaultdict

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label
from textual.widgets.data_table import ColumnKey

from shared.api import Invitation, ProjectRow
from shared.repo_url import InvalidRepoUrl, repo_key
from tui.client import ApiError
from tui.format import cell_len, head_cut, tail_cut
from tui.messages import (
    AlertArrived,
    InvitationArrived,
    InvitationClosed,
    ProjectChanged,
    ProjectDeleted,
    StreamReset,
)
from tui.sanitize import plain
from tui.screens.base import LiveScreen
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar
from tui.widgets.tables import cursor_key

NAME_WIDTH, OWNER_WIDTH = 20, 10
REPO_MIN = 14
"""The fewest cells the repository gets on a narrow terminal (cut in its middle), so that
the counts still fit 60 columns."""
BESIDE_REPO = len("runs") + len("running") + 5 * 2 + 2
"""The cells of the count columns, every column's padding and the scrollbar: with the name
and owner columns as wide as what they show, the repository column has the rest."""
"""Cells of a name, a repository URL and an owner in the lists: long ones pushed the
counts off 80 columns (the details and members screens show them whole)."""


class ProjectsScreen(LiveScreen):
    """Pick a project; counts follow the all-projects event stream.

    Invitations to projects are listed below the projects: joining one is the invited
    user's choice (``a`` accepts, ``d`` declines), and until then nothing is shared.
    """

    BINDINGS = [
        # priority: the table's own (hidden) enter would otherwise hide "Open" from the footer.
        Binding("enter", "open", "Open", priority=True, tooltip="open the project"),
        Binding(
            "a",
            "accept",
            "Accept invitation",
            tooltip="accept the invitation under the cursor (tab moves to them)",
        ),
        Binding("d", "decline", "Decline invitation", tooltip="decline the invitation"),
        Binding("t", "profile", "Profile", tooltip="profile and tokens"),
        Binding("m", "members", "Members", tooltip="who is in the project; the owner invites here"),
        Binding(
            "x",
            "delete",
            "Delete",
            tooltip="delete the project (asks first; its owner or an admin member)",
        ),
        Binding("r", "refresh", "Refresh", tooltip="refresh"),
        Binding("q", "app.quit", "Quit", tooltip="quit"),
        Binding("j", "cursor_down", show=False, tooltip="move down"),
        Binding("k", "cursor_up", show=False, tooltip="move up"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[int, ProjectRow] = {}
        self.invitations: list[Invitation] = []
        self._opened_requested = False
        self._shown_repo_width = 0

    def compose(self) -> ComposeResult:
        yield StatusBar()
        table: DataTable[str] = DataTable(cursor_type="row", id="projects")
        table.add_column("project", key="name")
        table.add_column("repository", key="repo")
        table.add_column("owner", key="owner")  # two "vision"s: mine, and one I joined
        table.add_column("runs", key="experiments")
        table.add_column("running", key="running")
        yield table
        yield Label("", id="no-projects", classes="hint")
        yield Label("", id="invitations-title", classes="hint")
        invitations: DataTable[str] = DataTable(cursor_type="row", id="invitations")
        invitations.add_column("invited to", key="name")
        invitations.add_column("repository", key="repo")
        invitations.add_column("by", key="by")
        yield invitations
        yield Footer(compact=True)

    place = "projects"

    def on_mount(self) -> None:
        self.query_one(StatusBar).show_live = True
        self.query_one("#projects", DataTable).focus()
        self.query_one("#invitations").display = False
        self.query_one("#invitations-title").display = False

    @work(group="projects", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        try:
            rows = await studio(self).api.projects()
        except ApiError as exc:
            studio(self).report(exc)
            return
        for row in rows:
            self._show(row, count=False)
        self._fit_repo_column()
        self.count_running()  # once for the whole list
        self._hint()
        self.load_invitations()
        self._open_requested(rows)

    def _open_requested(self, rows: list[ProjectRow]) -> None:
        """Open the project asked for at start (``--project``, the demo), once."""
        wanted = studio(self).settings.open_project
        if not wanted or self._opened_requested:
            return
        self._opened_requested = True
        matches = [r for r in rows if str(r.id) == wanted] or [r for r in rows if r.name == wanted]
        if not matches:
            self.notify(f"There is no project {wanted!r} for you; pick one here.")
        elif len(matches) > 1:
            ids = ", ".join(str(r.id) for r in matches)
            self.notify(f"Projects {ids} are all named {wanted!r}; pick one here.")
        else:
            self._open(matches[0].id)
        studio(self).show_welcome()  # over the project it opened

    @work(group="invitations", exclusive=True, exit_on_error=False)
    async def load_invitations(self) -> None:
        """Fetch the invitations waiting for an answer."""
        try:
            self.invitations = await studio(self).api.invitations()
        except ApiError as exc:
            studio(self).report(exc)
            return
        self._fill_invitations()
        self._fit_repo_column()
        self.refresh_bindings()  # accepting and declining apply only while one waits
        count = len(self.invitations)
        title = self.query_one("#invitations-title", Label)
        title.update(
            f"{count} invitation{'s' if count != 1 else ''}: tab to pick, a accepts, d declines"
            if count
            else ""
        )
        self.query_one("#invitations", DataTable).display = title.display = bool(count)

    def _fill_invitations(self) -> None:
        table = self.query_one("#invitations", DataTable)
        table.clear()
        for invitation in self.invitations:
            table.add_row(
                plain(head_cut(invitation.project_name, NAME_WIDTH)),
                plain(tail_cut(invitation.repo_url, self._url_room)),
                plain(head_cut(invitation.invited_by or "?", OWNER_WIDTH)),
                key=str(invitation.project_id),
            )

    @property
    def _repo_width(self) -> int:
        names = [p.name for p in self.projects.values()]
        names += [i.project_name for i in self.invitations]
        owners = [p.owner or "-" for p in self.projects.values()]
        owners += [i.invited_by or "?" for i in self.invitations]
        name = min(NAME_WIDTH, max(map(cell_len, names), default=0))
        owner = min(OWNER_WIDTH, max(map(cell_len, owners), default=0))
        beside = max(name, len("project")) + max(owner, len("owner")) + BESIDE_REPO
        return max(REPO_MIN, self.size.width - beside)

    @property
    def _url_room(self) -> int:
        """The URL width the rows are cut to (measured once per change, in
        ``_fit_repo_column``, not for every row shown)."""
        return max(REPO_MIN, self._shown_repo_width)

    def on_resize(self) -> None:
        self._fit_repo_column()

    def _fit_repo_column(self) -> None:
        """Give the URLs the room the terminal has (cut to 26 cells with 30 free, they were)."""
        width = self._repo_width
        if width == self._shown_repo_width:
            return
        table = self.query_one("#projects", DataTable)
        was_on = cursor_key(table)
        if width < self._shown_repo_width:  # a table's columns only widen: built anew
            table.clear()
            table.columns[ColumnKey("repo")].content_width = 0
        self._shown_repo_width = width
        for row in list(self.projects.values()):
            self._show(row, count=False)
        if was_on is not None and was_on in table.rows:  # on the same project
            table.move_cursor(row=table.get_row_index(was_on))
        self._fill_invitations()

    def _hint(self) -> None:
        """With no project, say how one comes (it stays: a toast was gone before it was read)."""
        self.refresh_bindings()  # the keys for a project come and go with the first and last
        hint = self.query_one("#no-projects", Label)
        hint.display = not self.projects
        # The table's share of the screen would push the hint to the bottom.
        self.query_one("#projects", DataTable).styles.height = "1fr" if self.projects else "auto"
        hint.update(
            "No projects yet. A training run makes its project: run it with"
            f" DVC_STUDIO_URL={studio(self).shown_server} and DVC_STUDIO_TOKEN set to an access"
            " token (t, then g makes one; or `livestudio token create`). Projects you are"
            " invited to appear below."
        )

    def _show(self, row: ProjectRow, count: bool = True) -> None:
        table = self.query_one("#projects", DataTable)
        key = str(row.id)
        self.projects[row.id] = row
        cells = (
            plain(head_cut(row.name, NAME_WIDTH)),
            plain(tail_cut(_place(row), self._url_room)),
            plain(head_cut(row.owner or "-", OWNER_WIDTH)),
            str(row.experiments),
            str(row.running),
        )
        if key in table.rows:
            for column, value in zip(
                ("name", "repo", "owner", "experiments", "running"), cells, strict=True
            ):
                table.update_cell(key, column, value, update_width=True)
        else:
            table.add_row(*cells, key=key)
            self._hint()
        if count:
            self.count_running()

    @work(group="live-count", exclusive=True, exit_on_error=False)
    async def count_running(self) -> None:
        """The Live counter: running experiments, each once.

        Projects of different repositories never show the same run, so their counts add
        up; projects of one repository (a monorepo's sub-project and the whole of it, or
        someone else's project you joined) may, so their running runs are fetched and
        counted once (adding the counts said 2 for one run shown in two projects).
        """
        by_repo: dict[str, list[ProjectRow]] = defaultdict(list)
        for project in self.projects.values():
            by_repo[_repo(project.repo_url)].append(project)
        total, shared = 0, []
        for projects in by_repo.values():
            if len(projects) == 1 or not any(p.running for p in projects):
                total += sum(p.running for p in projects)
            else:
                shared.append(projects)
        api = studio(self).api
        for projects in shared:
            running: set[int] = set()
            for project in projects:
                try:
                    rows = await api.experiments(project.id, status="running")
                except ApiError:  # gone meanwhile, or the network: count what is known
                    rows = []
                running.update(row.id for row in rows)
            total += len(running)
        self.query_one(StatusBar).running = total

    @on(ProjectChanged)
    def project_changed(self, message: ProjectChanged) -> None:
        self._show(message.project)
        self._fit_repo_column()
        if any(i.project_id == message.project.id for i in self.invitations):
            self.load_invitations()  # joined (accepted in a shell, say): no longer waiting

    @on(ProjectDeleted)
    def project_deleted(self, message: ProjectDeleted) -> None:
        self.projects.pop(message.project_id, None)
        table = self.query_one("#projects", DataTable)
        if str(message.project_id) in table.rows:
            table.remove_row(str(message.project_id))
        self._hint()
        self.count_running()

    @on(InvitationArrived)
    def invited(self, message: InvitationArrived) -> None:
        invitation = message.invitation
        self.notify(
            f"{invitation.invited_by or 'Someone'} invited you to {invitation.project_name!r};"
            " a accepts, d declines."
        )
        self.load_invitations()

    @on(InvitationClosed)
    def invitation_closed(self, message: InvitationClosed) -> None:
        if any(i.project_id == message.project_id for i in self.invitations):
            self.load_invitations()  # declined in another session, or withdrawn

    @on(AlertArrived)
    def alerted(self, message: AlertArrived) -> None:
        # This screen is at the bottom of every stack and follows the user's own stream:
        # alerts reach the user here whichever screen is open.
        studio(self).alert(message.alert)

    @on(StreamReset)
    def reset(self) -> None:
        self.load()

    def connection_changed(self, connected: bool) -> None:
        if connected:
            self.load()

    @on(DataTable.RowSelected, "#projects")
    def selected(self, event: DataTable.RowSelected) -> None:
        self._open(int(str(event.row_key.value)))

    def _invitation(self) -> Invitation | None:
        table = self.query_one("#invitations", DataTable)
        if not self.invitations or not table.row_count:
            self.notify("No invitations are waiting for you.")
            return None
        key = cursor_key(table)
        return next((i for i in self.invitations if str(i.project_id) == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Keys for what is not there leave the footer: accepting and declining while no
        # invitation waits; opening, members and deleting while there is no project.
        if action in ("accept", "decline"):
            return bool(self.invitations)
        if action in ("open", "members", "delete"):
            return bool(self.projects)
        return True

    def action_accept(self) -> None:
        invitation = self._invitation()
        if invitation is not None:
            self._answer(invitation, accept=True)

    def action_decline(self) -> None:
        invitation = self._invitation()
        if invitation is not None:
            self._answer(invitation, accept=False)

    @work(group="answer", exclusive=True, exit_on_error=False)
    async def _answer(self, invitation: Invitation, accept: bool) -> None:
        api = studio(self).api
        try:
            if accept:
                self._show(await api.accept_invitation(invitation.project_id))
                self._fit_repo_column()
            else:
                await api.decline_invitation(invitation.project_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        verb = "Joined" if accept else "Declined"
        self.notify(f"{verb} {invitation.project_name!r}.")
        self.load_invitations()

    def _project(self) -> ProjectRow | None:
        """The project under the cursor (told to move there when the invitations have it)."""
        table = self.query_one("#projects", DataTable)
        if not table.row_count:
            self.notify("No projects yet: a training run makes one (see above).")
            return None
        if self.focused is not table:
            self.notify("Move to a project in the list first.")
            return None
        return self.projects[int(str(cursor_key(table)))]

    def action_delete(self) -> None:
        project = self._project()
        if project is not None:
            self._ask_delete(project)

    def action_members(self) -> None:
        from tui.screens.members import MembersScreen

        project = self._project()
        if project is not None:
            self.app.push_screen(MembersScreen(project))

    @work(group="ask", exclusive=True, exit_on_error=False)  # never cancels a deletion
    async def _ask_delete(self, project: ProjectRow) -> None:
        """Ask the owner (or an admin member); tell anyone else who may."""
        from tui.screens.dialogs import ConfirmDialog, if_confirmed

        app = studio(self)
        if project.owner is not None:  # an owner's deleted account: any member may
            try:
                me = await app.api.user()
            except ApiError as exc:
                app.report(exc)
                return
            if project.owner != me.username and not me.is_admin:
                owner = f" ({project.owner})" if project.owner else ""
                self.notify(
                    f"Only the project's owner{owner} or an admin can delete it.",
                    severity="warning",
                )
                return
        # Which one, said whole: two projects may share a name (one per owner).
        owner = project.owner or "a deleted account"
        runs = f"{project.experiments:,} experiment{'s' if project.experiments != 1 else ''}"
        question = (
            f"Delete project {project.name} (id {project.id}, {project.repo_url}, owned by"
            f" {owner}, {runs})? Your runs no other project shows go with it; other"
            " members' runs move to projects of their own."
        )
        self.app.push_screen(
            ConfirmDialog(question, "Delete"), if_confirmed(lambda: self._delete(project.id))
        )

    @work(group="delete", exit_on_error=False)
    async def _delete(self, project_id: int) -> None:
        try:
            await studio(self).api.delete_project(project_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.notify("Project deleted.")

    def action_open(self) -> None:
        if self.focused is self.query_one("#invitations", DataTable):
            self.notify("An invitation: a accepts it (you join the project), d declines it.")
            return
        key = cursor_key(self.query_one("#projects", DataTable))
        if key is not None:
            self._open(int(key))

    def _open(self, project_id: int) -> None:
        from tui.screens.project import ProjectScreen

        self.app.push_screen(ProjectScreen(self.projects[project_id]))

    def action_profile(self) -> None:
        from tui.screens.profile import ProfileScreen

        self.app.push_screen(ProfileScreen())

    def action_refresh(self) -> None:
        self.load()

    def action_cursor_down(self) -> None:
        self._focused_table().action_cursor_down()

    def action_cursor_up(self) -> None:
        self._focused_table().action_cursor_up()

    def _focused_table(self) -> DataTable[str]:
        focused = self.focused
        return focused if isinstance(focused, DataTable) else self.query_one("#projects", DataTable)


def _repo(url: str) -> str:
    """Which repository a project shows (its URL as given when it cannot be read)."""
    try:
        return repo_key(url)
    except InvalidRepoUrl:
        return url


def _place(row: ProjectRow) -> str:
    """The repository, and the sub-project within it (two projects of one repository
    differ only there); cut from the left, the sub-project stays in view."""
    return f"{row.repo_url} ▸ {row.subdir}" if row.subdir else row.repo_url

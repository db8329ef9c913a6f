"""Who is in a project, and who is invited to it: the owner invites and removes, members leave."""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Label

from shared.api import Members, ProjectRow
from tui.client import ApiError
from tui.messages import ProjectChanged, ProjectDeleted, StreamReset
from tui.sanitize import plain
from tui.screens.base import LiveScreen
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar
from tui.widgets.tables import cursor_key

INVITED = "invited, not yet answered"
RELOAD_AFTER = 0.3
"""Seconds a project event waits before the members are fetched (a burst fetches once)."""


class MembersScreen(LiveScreen):
    """A project's owner, members and pending invitations, kept current by its events.

    Membership is consent (SPEC §2): an invited user joins only once they accept, so the
    list shows them as invited until then. Which keys apply depends on who looks: the
    owner invites (``i``) and removes (``x``); any other member may leave (``l``).
    """

    BINDINGS = [
        Binding("i", "invite", "Invite", tooltip="invite a user to the project"),
        Binding(
            "x",
            "remove",
            "Remove",
            tooltip="remove the member, or withdraw the invitation, under the cursor",
        ),
        Binding("l", "leave", "Leave", tooltip="leave the project (asks first)"),
        Binding("r", "reload", "Refresh", tooltip="refresh"),
        Binding("j", "cursor(1)", show=False, tooltip="move down"),
        Binding("k", "cursor(-1)", show=False, tooltip="move up"),
        Binding("q,escape", "app.pop_screen", "Back", tooltip="back"),
    ]

    place = "members"

    def __init__(self, project: ProjectRow) -> None:
        super().__init__()
        self.project = project
        self.members: Members | None = None
        self.me: str | None = None
        self._pending: Timer | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        # Whose: two projects may share a name (a removed member who posts again makes one).
        owner = f" (owner {self.project.owner}, id {self.project.id})" if self.project.owner else ""
        yield Label(plain(f"Members of {self.project.name}{owner}"), id="members-title")
        table: DataTable[str] = DataTable(cursor_type="row", id="members")
        table.add_column("user", key="user")
        table.add_column("role", key="role")
        yield table
        yield Label("", id="members-hint", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#members", DataTable).focus()
        self.load()

    @property
    def is_owner(self) -> bool:
        return self.members is not None and self.me is not None and self.members.owner == self.me

    @work(group="members", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Fetch the members (and, once, who I am: which keys apply depends on it)."""
        api = studio(self).api
        try:
            if self.me is None:
                members, me = await asyncio.gather(api.members(self.project.id), api.user())
                self.me = me.username
            else:
                members = await api.members(self.project.id)
        except ApiError as exc:
            studio(self).report(exc)
            if exc.status == 404:  # deleted, or I was removed, while the stream was away
                studio(self).close_screen(self)
            return
        self._show(members)

    def _show(self, members: Members) -> None:
        self.members = members
        table = self.query_one("#members", DataTable)
        current = self._current()
        table.clear()
        rows = [(members.owner, "owner")] if members.owner else []
        rows += [(name, "member") for name in members.members if name != members.owner]
        rows += [(name, INVITED) for name in members.invited]
        for name, role in rows:
            you = " (you)" if name == self.me else ""
            table.add_row(plain(name + you), plain(role), key=name)
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current))
        self.refresh_bindings()  # invite/remove or leave: by who I am
        self.query_one("#members-hint", Label).update(plain(self._hint(members)))

    def _hint(self, members: Members) -> str:
        if self.is_owner:
            return (
                "You own this project: i invites a user (they join once they accept);"
                " x removes the member, or withdraws the invitation, under the cursor."
            )
        owner = f" ({members.owner})" if members.owner else ""
        return (
            f"Only the project's owner{owner} invites and removes members;"
            " l leaves the project (your runs only it shows move to a project of your own)."
        )

    def _current(self) -> str | None:
        return cursor_key(self.query_one("#members", DataTable))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.members is None:
            return action not in ("invite", "remove", "leave")
        if action in ("invite", "remove"):
            return self.is_owner
        if action == "leave":
            return not self.is_owner and self.me in self.members.members
        return True

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#members", DataTable)
        table.move_cursor(row=table.cursor_row + step)

    def action_reload(self) -> None:
        self.load()

    def action_invite(self) -> None:
        from tui.screens.dialogs import InviteDialog

        self.app.push_screen(InviteDialog(send=self._invite))

    async def _invite(self, username: str) -> None:
        """Sent from the dialog, which shows a refusal (see ``dialogs.sent``)."""
        again = self.members is not None and username in self.members.invited
        members = await studio(self).api.invite(self.project.id, username)
        self._show(members)
        if again:
            self.notify(
                f"{username} was invited already: invited again, they join once they accept."
            )
        else:
            self.notify(f"Invited {username}; they join once they accept.")

    def action_remove(self) -> None:
        from tui.screens.dialogs import ConfirmDialog, if_confirmed

        name = self._current()
        if name is None or self.members is None:
            return
        if name == self.me:
            self.notify("The owner cannot leave the project; delete it instead (x on the list).")
            return
        invited = name in self.members.invited
        if invited:
            question, verb = f"Withdraw the invitation of {name}?", "Withdraw"
        else:
            question, verb = (
                f"Remove {name} from {self.project.name}? Their runs only this project shows"
                " move to a project of their own.",
                "Remove",
            )
        self.app.push_screen(
            ConfirmDialog(question, verb),
            if_confirmed(lambda: self._remove(name, only_invitation=invited)),
        )

    def action_leave(self) -> None:
        from tui.screens.dialogs import ConfirmDialog, if_confirmed

        if self.me is None:
            return
        me = self.me
        question = (
            f"Leave {self.project.name}? You no longer see it; your runs only it shows move"
            " to a project of your own. Only an invitation from its owner brings you back."
        )
        self.app.push_screen(
            ConfirmDialog(question, "Leave"), if_confirmed(lambda: self._remove(me))
        )

    @work(group="change", exit_on_error=False)
    async def _remove(self, username: str, only_invitation: bool = False) -> None:
        leaving = username == self.me
        if leaving:
            studio(self).left_projects.add(self.project.id)
        try:
            await studio(self).api.remove_member(self.project.id, username, only_invitation)
        except ApiError as exc:
            if leaving:
                studio(self).left_projects.discard(self.project.id)
            studio(self).report(exc)  # 409: they accepted while the question was open
            self.load()
            return
        if username == self.me:
            return  # the project_deleted that follows closes the screen and says so
        done = "Withdrew the invitation of" if only_invitation else "Removed"
        self.notify(f"{done} {username}.")
        self.load()

    @on(ProjectChanged)
    def changed(self, message: ProjectChanged) -> None:
        # Someone accepted, declined, joined or left, or only a count changed: project
        # events carry no membership, and a busy project sends one per run that starts or
        # ends, so a burst of them fetches the members once.
        if message.project.id != self.project.id:
            return
        self.project = message.project
        if self._pending is None:
            self._pending = self.set_timer(RELOAD_AFTER, self._reload_pending)

    def _reload_pending(self) -> None:
        self._pending = None
        self.load()

    @on(ProjectDeleted)
    def deleted(self, message: ProjectDeleted) -> None:
        if message.project_id != self.project.id or self not in self.app.screen_stack:
            return
        from tui.screens.project import ProjectScreen

        below = self.app.screen_stack[: self.app.screen_stack.index(self)]
        if any(isinstance(s, ProjectScreen) and s.project.id == self.project.id for s in below):
            return  # the project's own screen says so once and closes everything over it
        self.notify(studio(self).gone_note(self.project.id, self.project.name), severity="warning")
        studio(self).close_screen(self)

    @on(StreamReset)
    def reset(self) -> None:
        self.load()

    def reconnected(self) -> None:
        self.load()

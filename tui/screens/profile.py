"""Profile: access tokens and password."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from shared.api import TokenInfo, UserInfo
from tui.client import ApiError
from tui.format import ago
from tui.screens.dialogs import ConfirmDialog, PasswordDialog, TokenDialog
from tui.widgets.status_bar import StatusBar


def token_line(token: TokenInfo, now: datetime) -> list[str]:
    """Prefix, name, scopes, created and last used of a token."""
    return [
        f"{token.prefix}…",
        token.name,
        ", ".join(token.scopes) or "all",
        f"{ago(token.created_at, now)} ago",
        f"{ago(token.last_used_at, now)} ago" if token.last_used_at else "never",
    ]


class ProfileScreen(Screen[None]):
    """Generate, regenerate or delete the profile token; change the password."""

    BINDINGS = [
        Binding("g", "generate", "Generate token"),
        Binding("d", "delete", "Delete token"),
        Binding("w", "password", "Password"),
        Binding("r", "reload", "Refresh"),
        Binding("q,escape", "app.pop_screen", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.info: UserInfo | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with VerticalScroll():
            yield Static("Loading…", id="profile")
        yield Footer()

    def on_mount(self) -> None:
        bar = self.query_one(StatusBar)
        bar.server = self.app.api.server  # type: ignore[attr-defined]
        bar.place = "profile"
        self.load()

    @work(group="profile", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        try:
            self.info = await self.app.api.user()  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        self.render_info()

    def render_info(self) -> None:
        info = self.info
        if info is None:
            return
        now = datetime.now(UTC)
        table = Table(box=None, padding=(0, 2), show_edge=False)
        for column in ("token", "name", "scopes", "created", "last used"):
            table.add_column(column, style="bold" if column == "token" else "")
        if info.profile_token:
            table.add_row(*token_line(info.profile_token, now))
        for token in info.client_tokens:
            table.add_row(*token_line(token, now))
        header = Text.assemble(
            ("User ", "dim"), (info.username, "bold"), (" (admin)" if info.is_admin else "", "dim")
        )
        if not info.profile_token and not info.client_tokens:
            body: object = Text(
                "No access tokens. Press g to generate one for DVC_STUDIO_TOKEN.", style="dim"
            )
        else:
            body = table
        hint = Text(
            "\ng generate/regenerate the profile token · d delete it · w change password",
            style="dim",
        )
        from rich.console import Group

        self.query_one("#profile", Static).update(Group(header, Text(""), body, hint))

    def action_reload(self) -> None:
        self.load()

    def action_generate(self) -> None:
        exists = self.info is not None and self.info.profile_token is not None
        question = (
            "Regenerate your profile token? The current one stops working at once."
            if exists
            else "Generate a profile token?"
        )
        self.app.push_screen(
            ConfirmDialog(question, "Regenerate" if exists else "Generate"),
            lambda ok: self._generate() if ok else None,
        )

    @work(group="token", exclusive=True, exit_on_error=False)
    async def _generate(self) -> None:
        try:
            new = await self.app.api.generate_token()  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        self.app.push_screen(TokenDialog(new.token))
        self.load()

    def action_delete(self) -> None:
        if self.info is None or self.info.profile_token is None:
            self.notify("You have no profile token to delete.")
            return
        self.app.push_screen(
            ConfirmDialog("Delete your profile token? Runs using it will be refused.", "Delete"),
            lambda ok: self._delete() if ok else None,
        )

    @work(group="token", exclusive=True, exit_on_error=False)
    async def _delete(self) -> None:
        try:
            await self.app.api.delete_token()  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        self.notify("Profile token deleted.")
        self.load()

    def action_password(self) -> None:
        self.app.push_screen(PasswordDialog(), self._password_chosen)

    def _password_chosen(self, answer: tuple[str, str, bool] | None) -> None:
        if answer is not None:
            self._change_password(*answer)

    @work(group="password", exclusive=True, exit_on_error=False)
    async def _change_password(self, current: str, new: str, reset_tokens: bool) -> None:
        try:
            await self.app.api.change_password(current, new, reset_tokens)  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        self.notify(
            "Password changed." + (" Every access token was deleted." if reset_tokens else "")
        )
        self.load()

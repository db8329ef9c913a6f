"""Log in with server URL, username and password."""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label

from tui.client import Api, ApiError
from tui.typed import studio
from tui.widgets.footer import Footer


class LoginScreen(Screen[None]):
    """Shown when no session is stored, or when it expired."""

    BINDINGS = [
        Binding("escape", "app.quit", "Quit"),
        # Priority: applied as each key arrives, so keys typed ahead (a password manager's
        # auto-type, a fast typist) land in the field they were meant for; as the fields'
        # own keys they ran only after the keys behind them had reached the old field.
        Binding("tab", "next_field", show=False, priority=True),
        Binding("shift+tab", "previous_field", show=False, priority=True),
        Binding("enter", "advance", show=False, priority=True),
    ]

    def compose(self) -> ComposeResult:
        app = studio(self)
        # Focused as the screen is composed (not once mounted): keys typed at once go there.
        self.AUTO_FOCUS = "#password" if app.username else "#username"  # type: ignore[misc]
        with Vertical(id="login"):
            yield Label("Log in to livestudio", classes="title")
            yield Input(app.api.server, placeholder="http://host:8000", id="server")
            yield Input(app.username or "", placeholder="username", id="username")
            yield Input(placeholder="password", password=True, id="password")
            yield Button("Log in", variant="primary", id="submit")
            yield Label("", id="error", classes="hint")
        yield Footer(compact=True)

    def action_next_field(self) -> None:
        self.focus_next()

    def action_previous_field(self) -> None:
        self.focus_previous()

    def action_advance(self) -> None:
        """Enter: the next field, or log in from the password field or the button."""
        focused = self.focused
        if isinstance(focused, Button) or (focused is not None and focused.id == "password"):
            self._after_typed(list(self.query(Input)), self.submit)
        else:
            self.focus_next()

    def _after_typed(self, fields: list[Input], then: Callable[[], object]) -> None:
        """Run ``then`` once every field has taken the keys typed into it before (each field
        takes its keys in its own turn, after this binding has run)."""
        if not fields:
            then()
            return
        fields[0].call_later(self._after_typed, fields[1:], then)

    @on(Button.Pressed, "#submit")
    def submit(self) -> None:
        server = self.query_one("#server", Input).value.strip().rstrip("/")
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        if not server.startswith(("http://", "https://")):
            self._error("The server URL starts with http:// or https://.")
            return
        if not username or not password:
            self._error("Enter your username and password.")
            return
        self._error("Logging in…")
        self.log_in(server, username, password)

    def _error(self, text: str) -> None:
        self.query_one("#error", Label).update(text)

    @work(group="login", exclusive=True, exit_on_error=False)
    async def log_in(self, server: str, username: str, password: str) -> None:
        app = studio(self)
        api = app.api
        if api.server != server:
            await api.close()
            api = Api(server)
            app.api = api
        try:
            login = await api.login(username, password)
        except ApiError as exc:
            self._error(exc.detail)
            self.query_one("#password", Input).value = ""
            return
        app.logged_in(login.username, login.session_token)

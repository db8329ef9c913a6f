"""Log in with server URL, username and password."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button, Input, Label

from tui.client import Api, ApiError
from tui.screens.fields import TYPE_AHEAD_BINDINGS, TypeAheadForm
from tui.typed import studio
from tui.widgets.footer import Footer


class LoginScreen(TypeAheadForm[None]):
    """Shown when no session is stored, or when it expired."""

    BINDINGS = [Binding("escape", "app.quit", "Quit"), *TYPE_AHEAD_BINDINGS]
    LAST_FIELD = "password"

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

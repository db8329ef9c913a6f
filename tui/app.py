"""``build_app(settings, api)``: the one way to make the livestudio TUI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen

import tui.graphics  # noqa: F401  (detects terminal graphics before the app runs)
from shared.watches import AlertInfo
from tui import desktop
from tui.client import Api, ApiError, SessionExpired
from tui.commands import LiveStudioCommands
from tui.settings import TOKEN_LINE, Session, SessionNotKept, TuiSettings

SSH_SESSION_ENDED = (
    "livestudio: your session has ended (logged out, expired, or the password changed):"
    " connect again with ssh."
)


class LiveStudioApp(App[None]):
    """Keyboard-first live experiment tracking."""

    TITLE = "livestudio"
    CSS_PATH = Path(__file__).parent / "styles" / "app.tcss"
    COMMANDS = App.COMMANDS | {LiveStudioCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", tooltip="every key"),
        Binding("A", "alerts", "Alerts", show=False, tooltip="alerts my watches fired"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="quit"),
    ]

    def __init__(self, settings: TuiSettings, api: Api, username: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.api = api
        self.username = username
        self.held_alerts: list[AlertInfo] = []
        """Alerts that fired while a dialog was open: shown once it closes."""
        self.left_projects: set[int] = set()
        """Projects the user chose to leave here: their screens close saying just that."""
        self.told_outages: set[str] = set()
        """Why the server is away, as told in a toast during this outage (each once, on
        whichever screen: going back to the projects list told it again)."""

    STOCK_COMMANDS_LEFT_OUT = frozenset({"Keys", "Maximize", "Minimize", "Screenshot"})
    """Textual's own palette entries that do not fit here: `?` lists every key (the Keys
    panel stayed open over every screen, and escape moved the screen beneath it), and a
    screenshot is a file written where the TUI runs — on the server, over SSH."""

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title not in self.STOCK_COMMANDS_LEFT_OUT:
                yield command

    def on_mount(self) -> None:
        from tui.screens.login import LoginScreen
        from tui.screens.projects import ProjectsScreen

        self.screen_change_signal.subscribe(self, self._show_held_alerts)
        if not self.api.token and self.settings.over_ssh:
            self.exit(return_code=1, message=SSH_SESSION_ENDED)
            return
        if self.settings.over_ssh:  # the server's word that the session is about to close
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self._idle_warning)
        self.push_screen(ProjectsScreen() if self.api.token else LoginScreen())
        if self.settings.welcome and not self.settings.welcome_lines:
            self.notify(self.settings.welcome, timeout=12)

    def _idle_warning(self) -> None:
        self.notify(
            "No key pressed for a while: this SSH session closes soon. Press any key to keep"
            " it open.",
            severity="warning",
            timeout=60,
        )

    def show_welcome(self) -> None:
        """The welcome with lines to copy (the demo's), once the first screen is open."""
        from tui.screens.dialogs import CopyDialog

        if self.settings.welcome_lines:
            self.push_screen(
                CopyDialog(
                    self.settings.welcome,
                    self.settings.welcome_lines,
                    "y copies these lines; run them in another shell, then any DVCLive script"
                    " there shows up here live. ? shows them again.",
                    "Copied to the clipboard.",
                    shell=True,
                )
            )

    def profile_token_replaced(self, token: str | None) -> None:
        """Keep the demo's lines to copy true once its profile token was regenerated or
        deleted: ``?`` showed (and ``y`` copied) a token that had stopped working."""
        lines = self.settings.welcome_lines
        if not lines:
            return
        new = (
            f"{TOKEN_LINE}{token}"
            if token
            else f"{TOKEN_LINE}  # deleted: t (profile), then g, makes a new one"
        )
        self.settings.welcome_lines = "\n".join(
            new if line.startswith(TOKEN_LINE) else line for line in lines.splitlines()
        )

    @property
    def shown_server(self) -> str:
        """The server's URL to show, and to tell users to set as DVC_STUDIO_URL."""
        return self.settings.public_url or self.api.server

    def logged_in(self, username: str, token: str) -> None:
        """Keep the session and show the projects."""
        from tui.screens.projects import ProjectsScreen

        self.username = username
        try:
            self.settings.save_session(Session(self.api.server, username, token))
        except SessionNotKept as exc:  # logged in all the same, until the TUI quits
            self.notify(f"{exc.detail} Logged in until you quit.", severity="warning")
        self.switch_screen(ProjectsScreen())

    def session_expired(self) -> None:
        """Back to the login screen, whatever was open."""
        from tui.screens.login import LoginScreen

        self.settings.forget_session(self.api.server)
        self.api.use_token(None)
        if self.settings.over_ssh:
            self.exit(return_code=1, message=SSH_SESSION_ENDED)
            return
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(LoginScreen())
        self.notify("Your session has ended; log in again.", severity="warning")

    def close_screen(self, screen: Screen[Any]) -> None:
        """Close ``screen`` and every screen opened over it (dialogs included)."""
        if screen not in self.screen_stack:
            return
        while self.screen_stack[-1] is not screen:
            self.pop_screen()
        self.pop_screen()

    def gone_note(self, project_id: int, name: str) -> str:
        """What to say when a project disappears from under its screens."""
        if project_id in self.left_projects:
            self.left_projects.discard(project_id)  # joined again later: said anew
            return f"You left {name}."
        return f"Project {name} was deleted, or you are no longer a member."

    def report(self, error: Exception) -> None:
        """Show a failed request as a notification (never a traceback)."""
        if isinstance(error, SessionExpired):
            self.session_expired()
        elif isinstance(error, ApiError):
            self.notify(error.detail, severity="error", timeout=6)
        else:
            self.notify(f"Unexpected error: {error}", severity="error", timeout=6)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain text: messages carry run, project and metric names,
        which Textual would otherwise read as markup (``x[/b]`` would crash the app)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def alert(self, alert: AlertInfo) -> None:
        """A watch fired: a notification, the terminal bell and a desktop notification.

        While a dialog is open the notification waits for it to close: a 15-second toast of
        three lines covered the dialog's buttons at 80x24 (the bell rings at once).
        """
        if isinstance(self.screen, ModalScreen):
            self.held_alerts.append(alert)
        else:
            self._toast(alert)
        if self._driver is not None:
            self._driver.write("\a" + desktop.notification("livestudio", alert.title))

    def _toast(self, alert: AlertInfo, more: int = 0) -> None:
        others = f"\n(and {more} more: A lists them)" if more else "\n(A lists alerts)"
        self.notify(
            f"{alert.title}\n{alert.detail}{others}",
            title="Alert",
            severity="warning",
            timeout=15,
            markup=False,
        )

    def _show_held_alerts(self, screen: Screen[Any]) -> None:
        if not self.held_alerts or isinstance(screen, ModalScreen):
            return
        held, self.held_alerts = self.held_alerts, []
        for alert in held[-2:-1]:
            self._toast(alert)
        self._toast(held[-1], more=max(0, len(held) - 2))

    def action_alerts(self) -> None:
        """Show the alerts my watches fired."""
        from tui.screens.alerts import AlertsScreen

        if not isinstance(self.screen, AlertsScreen) and self.api.token:
            # The list says all the toasts said: they go (they covered half a screen for
            # 15 s each, with no key to dismiss them).
            self.clear_notifications()
            self.push_screen(AlertsScreen())

    def action_help(self) -> None:
        """Show every key."""
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def build_app(settings: TuiSettings, api: Api | None = None) -> LiveStudioApp:
    """Make the app for the CLI and the tests; uses the stored session when it matches."""
    if api is None:
        session = settings.load_session(settings.server)
        api = Api(settings.server, session.token if session else None)
    session = settings.load_session(api.server)
    username = session.username if session else None
    return LiveStudioApp(settings, api, username)

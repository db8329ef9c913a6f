"""The top bar: server, project, connection state and the Live counter."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    """One line; clicking the Live counter toggles the running-only filter."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    server: reactive[str] = reactive("")
    place: reactive[str] = reactive("")
    connection: reactive[str] = reactive("connecting…")
    connected: reactive[bool] = reactive(False)
    running: reactive[int] = reactive(0)
    live_only: reactive[bool] = reactive(False)
    show_live: reactive[bool] = reactive(False)
    show_connection: reactive[bool] = reactive(True)

    class LiveClicked(Message):
        """The user clicked the Live counter."""

    def render(self) -> Text:
        text = Text.assemble(
            ("livestudio ", "bold"),
            (self.server, "dim"),
            "  ",
            (self.place, "bold"),
            "  ",
        )
        if self.show_connection:
            text.append("● " if self.connected else "◌ ", "green" if self.connected else "yellow")
            text.append(self.connection + "  ")
        if self.show_live:
            label = f" Live {self.running} " + ("(only) " if self.live_only else "")
            text.append(label, "bold reverse")
        return text

    def on_click(self) -> None:
        self.post_message(self.LiveClicked())

"""The top bar: server, project, connection state and the Live counter."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from tui.format import cell_len, head_cut, tail_cut


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

    class LiveClicked(Message):
        """The user clicked the Live counter."""

    def render(self) -> Text:
        tail = Text()
        tail.append("● " if self.connected else "◌ ", "green" if self.connected else "yellow")
        tail.append(self.connection + "  ")
        if self.show_live:
            label = f" Live {self.running} " + ("(only) " if self.live_only else "")
            tail.append(label, "bold reverse")
        # The connection state and the Live counter always show: a long place (five runs'
        # names in plots) or server URL is cut instead, the server first.
        room = (self.content_size.width or 80) - len("livestudio ") - 4 - tail.cell_len
        server, place = self.server, self.place
        if cell_len(server) + cell_len(place) > room:
            server = server.split("://", 1)[-1]  # the scheme goes first: "…tp://" read badly
        if cell_len(server) + cell_len(place) > room:
            server = tail_cut(server, max(12, room - cell_len(place)))
            place = head_cut(place, max(8, room - cell_len(server)))
        text = Text.assemble(("livestudio ", "bold"), (server, "dim"), "  ", (place, "bold"), "  ")
        return text + tail

    def on_click(self) -> None:
        self.post_message(self.LiveClicked())

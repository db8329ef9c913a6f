"""What every live screen shares: the status bar and a followed event stream."""

from __future__ import annotations

from textual import on, work
from textual.screen import Screen

from tui.client import ApiError
from tui.messages import ConnectionChanged
from tui.streaming import pump_events
from tui.widgets.status_bar import StatusBar


class LiveScreen(Screen[None]):
    """A screen that follows ``events_path`` and shows the connection in its status bar."""

    events_path: str = "/api/events"
    place: str = ""

    def on_mount(self) -> None:
        bar = self.query_one(StatusBar)
        bar.server = self.app.api.server  # type: ignore[attr-defined]
        bar.place = self.place
        self.follow()

    @work(group="stream", exclusive=True, exit_on_error=False)
    async def follow(self) -> None:
        """Follow the stream forever; it reconnects with backoff on its own."""
        try:
            await pump_events(self.app.api, self.events_path, self)  # type: ignore[attr-defined]
        except ApiError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]

    @on(ConnectionChanged)
    def show_connection(self, message: ConnectionChanged) -> None:
        bar = self.query_one(StatusBar)
        bar.connected = message.state.connected
        bar.connection = (
            "connected"
            if message.state.connected
            else f"reconnecting in {message.state.retry_in:.0f}s"
        )
        self.connection_changed(message.state.connected)

    def connection_changed(self, connected: bool) -> None:
        """Hook: the stream (re)connected or dropped."""

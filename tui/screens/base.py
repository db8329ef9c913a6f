"""What every live screen shares: the status bar and a followed event stream."""

from __future__ import annotations

import math
import time

from textual import on, work
from textual.screen import Screen

from tui.client import ApiError, SessionExpired, StreamGone, StreamState
from tui.messages import ConnectionChanged
from tui.streaming import pump_events
from tui.typed import studio
from tui.widgets.status_bar import StatusBar


class LiveScreen(Screen[None]):
    """A screen that follows ``events_path`` and shows the connection in its status bar.

    A screen opened over one that already follows the same stream (details or plots over
    their project) shares that stream instead of opening another connection: the screen
    below posts every event to it as well, for as long as it is mounted.
    """

    events_path: str = "/api/events"
    place: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.followers: list[LiveScreen] = []
        self.source: LiveScreen | None = None
        self.is_following = False
        self.last_state: StreamState | None = None
        self.dropped = False
        """The stream dropped since it last connected."""
        self._retry_at: float | None = None
        """When the stream tries again (monotonic), while it waits to: the bar counts down."""

    def on_mount(self) -> None:
        # Textual runs this for every subclass too, after the subclass's own on_mount:
        # subclasses do not call it themselves.
        bar = self.query_one(StatusBar)
        bar.server = studio(self).shown_server
        bar.place = self.place
        self.set_interval(1.0, self._count_down)
        self.source = self._stream_below()
        if self.source is None:
            self.is_following = True
            self.follow()
            return
        self.source.followers.append(self)
        if self.source.last_state is not None:
            self.post_message(ConnectionChanged(self.source.last_state))

    def on_unmount(self) -> None:
        if self.source is not None and self in self.source.followers:
            self.source.followers.remove(self)

    def _stream_below(self) -> LiveScreen | None:
        for screen in reversed(self.app.screen_stack):
            if (
                screen is not self
                and isinstance(screen, LiveScreen)
                and screen.is_following
                and screen.events_path == self.events_path
            ):
                return screen
        return None

    @work(group="stream", exclusive=True, exit_on_error=False)
    async def follow(self) -> None:
        """Follow the stream forever; it reconnects with backoff on its own.

        It ends only when retrying cannot help: the session ended (back to login), the
        project is gone (``stream_gone``), or the server refuses for good (the bar says so).
        """
        try:
            await pump_events(
                studio(self).api,
                self.events_path,
                lambda: [self, *self.followers],
            )
        except SessionExpired as exc:
            studio(self).report(exc)
        except StreamGone as exc:
            self._stopped(exc.detail)
            self.stream_gone(exc.detail)
        except ApiError as exc:
            self._stopped(exc.detail)
            studio(self).report(exc)

    def _stopped(self, reason: str) -> None:
        state = StreamState(connected=False, retry_in=-1, reason=reason)
        for target in (self, *self.followers):
            target.post_message(ConnectionChanged(state))

    def stream_gone(self, reason: str) -> None:
        """Hook: the stream's subject no longer exists for the user."""
        self.notify(reason, severity="warning")

    @on(ConnectionChanged)
    def show_connection(self, message: ConnectionChanged) -> None:
        self.last_state = message.state
        bar = self.query_one(StatusBar)
        bar.connected = message.state.connected
        state = message.state
        self._retry_at = None
        if state.connected:
            bar.connection = "connected"
            studio(self).told_outages.clear()
        elif state.retry_in < 0:
            bar.connection = f"stopped: {state.reason}"[:60]
        else:
            self._retry_at = time.monotonic() + state.retry_in
            self._count_down()  # (the reason: a toast)
            # Once per reason and outage, not every retry (retries that fail in turns
            # for two reasons told the first one again).
            told = studio(self).told_outages
            if self._on_top and state.retry_in >= 4 and state.reason not in told:
                told.add(state.reason)
                self.notify(
                    f"Reconnecting: {state.reason.rstrip('.')}.", severity="warning", timeout=4
                )
        self.connection_changed(message.state.connected)
        if state.connected and self.dropped:
            self.reconnected()
        self.dropped = not state.connected

    @property
    def _on_top(self) -> bool:
        """The live screen the user sees, under any dialog: the one to tell of an outage.
        (Textual's ``is_current`` holds for screens behind the top one too: the projects
        list under an open project told it as well, two toasts for one outage.)"""
        top = next((s for s in reversed(self.app.screen_stack) if isinstance(s, LiveScreen)), None)
        return top is self

    def _count_down(self) -> None:
        if self._retry_at is not None:
            left = max(0, math.ceil(self._retry_at - time.monotonic()))
            self.query_one(StatusBar).connection = (
                f"reconnecting in {left}s" if left else "reconnecting…"
            )

    def reconnected(self) -> None:
        """Hook: the stream is back after a drop (what failed to load meanwhile can load)."""

    def connection_changed(self, connected: bool) -> None:
        """Hook: the stream (re)connected or dropped."""

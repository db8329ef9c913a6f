"""The alerts my watches fired, newest first, with each webhook's delivery log."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from shared.watches import AlertInfo
from tui import clock
from tui.client import ApiError
from tui.format import AGO_EVERY, time_ago
from tui.messages import AlertArrived
from tui.sanitize import plain
from tui.screens.base import LiveScreen
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar
from tui.widgets.tables import cursor_key


def delivery_summary(alert: AlertInfo) -> str:
    """How the alert's webhook post went, in a few words."""
    if not alert.webhook:
        return ""
    if not alert.deliveries:
        return "sending…"
    last = alert.deliveries[-1]
    tries = len(alert.deliveries)
    if last.error is None:
        return f"delivered ({last.status})" + (f" after {tries} tries" if tries > 1 else "")
    return f"failed ({tries} {'try' if tries == 1 else 'tries'})"


def delivery_log(alert: AlertInfo) -> str:
    """Every attempt to post the alert, one line each."""
    if not alert.webhook:
        return f"{alert.title}\n{alert.detail}\nThis watch posts to no webhook."
    lines = [alert.title, alert.detail]
    now = clock.utcnow()
    for delivery in alert.deliveries:
        outcome = delivery.error or f"delivered ({delivery.status})"
        lines.append(f"  try {delivery.attempt}, {time_ago(delivery.at, now)}: {outcome}")
    if not alert.deliveries:
        lines.append("  not sent yet")
    return "\n".join(lines)


class AlertsScreen(LiveScreen):
    """Recent firings; ``enter`` opens the experiment, new alerts appear as they fire."""

    BINDINGS = [
        Binding("enter", "open", "Open experiment", priority=True, tooltip="open the experiment"),
        Binding("r", "reload", "Refresh", tooltip="refresh"),
        Binding("j", "cursor(1)", show=False, tooltip="move down"),
        Binding("k", "cursor(-1)", show=False, tooltip="move up"),
        Binding("q,escape", "app.pop_screen", "Back", tooltip="back"),
    ]

    place = "alerts"

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[AlertInfo] = []

    def compose(self) -> ComposeResult:
        yield StatusBar()
        table: DataTable[str] = DataTable(cursor_type="row", id="alerts")
        # The webhook's few words before the alert's long title: after it, a stall's title
        # pushed them off an 80-column screen.
        for column in ("when", "webhook", "alert"):
            table.add_column(column, key=column)
        yield table
        yield Static("", id="delivery-log", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#alerts", DataTable).focus()
        self.load()
        self.set_interval(AGO_EVERY, self._retell)

    def _retell(self) -> None:
        """Say again how long ago each alert fired (and its tries were made)."""
        table = self.query_one("#alerts", DataTable)
        now = clock.utcnow()
        for alert in self.alerts:
            if str(alert.id) in table.rows:
                table.update_cell(
                    str(alert.id), "when", time_ago(alert.fired_at, now), update_width=True
                )
        self._show_log()

    @work(group="alerts", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Fetch my newest alerts."""
        watching = 0
        try:
            self.alerts = await studio(self).api.alerts()
            if not self.alerts:  # what "nothing yet" means depends on it
                watching = len(await studio(self).api.watches())
        except ApiError as exc:
            studio(self).report(exc)
            return
        table = self.query_one("#alerts", DataTable)
        table.clear()
        now = clock.utcnow()
        for alert in self.alerts:
            table.add_row(
                time_ago(alert.fired_at, now),
                plain(delivery_summary(alert)),
                plain(alert.title),
                key=str(alert.id),
            )
        if not self.alerts:
            nothing = (
                f"No alerts yet: your {watching} watch{'' if watching == 1 else 'es'} did not fire."
                if watching
                else "No alerts yet: press ! on an experiment to watch it."
            )
            table.add_row("", "", nothing, key="none")
        self._show_log()

    def _current(self) -> AlertInfo | None:
        key = cursor_key(self.query_one("#alerts", DataTable))
        return next((a for a in self.alerts if str(a.id) == key), None)

    @on(DataTable.RowHighlighted)
    def _show_log(self) -> None:
        alert = self._current()
        self.query_one("#delivery-log", Static).update(
            plain(delivery_log(alert) if alert is not None else "")
        )

    @on(AlertArrived)
    def arrived(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    def action_cursor(self, rows: int) -> None:
        table = self.query_one("#alerts", DataTable)
        table.move_cursor(row=table.cursor_row + rows)

    def action_open(self) -> None:
        from tui.screens.details import DetailsScreen

        alert = self._current()
        if alert is None:
            self.notify("No alert here.")
            return
        if alert.project_id is None:
            self.notify("That experiment is in none of your projects any more.")
            return
        self.app.push_screen(
            DetailsScreen(alert.experiment_id, f"/api/projects/{alert.project_id}/events")
        )

"""Profile: access tokens, SSH keys, my watches, approving a device login, password."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Label

from shared.api import PendingLogin, SshKeyInfo, TokenInfo, UserInfo
from shared.watches import WatchCreate, WatchInfo
from tui import clock
from tui.client import ApiError, SessionExpired
from tui.format import AGO_EVERY, time_ago
from tui.sanitize import plain
from tui.screens.dialogs import (
    CodeDialog,
    ConfirmDialog,
    KeyDialog,
    PasswordDialog,
    TokenDialog,
    if_confirmed,
)
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar
from tui.widgets.tables import cursor_key


def token_cells(token: TokenInfo, now: datetime) -> list[str]:
    """Kind, prefix, name, scopes, created and last used of a token."""
    return [
        "profile" if token.kind == "profile" else "client",
        f"{token.prefix}…",
        token.name,
        ", ".join(token.scopes) or "all",
        time_ago(token.created_at, now),
        time_ago(token.last_used_at, now) if token.last_used_at else "never",
    ]


def login_question(login: PendingLogin, now: datetime) -> str:
    """What the user confirms: who asks, for which token and scopes, since when."""
    return (
        f"{login.describe(now)} with the code {login.user_code}. Approve it for your account?"
        " Only approve a login you started yourself."
    )


def short_fingerprint(fingerprint: str) -> str:
    """Enough of a key's fingerprint to tell it from the others (``ssh-keygen -l`` prints
    it whole, and adding or removing a key names it whole): the table fits 80 columns."""
    kind, _, digest = fingerprint.partition(":")
    return f"{kind}:{digest[:10]}…" if len(digest) > 10 else fingerprint


REFRESH_SECONDS = 30.0
"""How often the profile fetches itself again: "ago" times move on, and a token a device
login minted elsewhere (``livestudio approve``) appears."""


COLUMNS = {
    "#tokens": ("kind", "token", "name", "scopes", "created", "last used"),
    "#keys": ("fingerprint", "type", "comment", "added", "last used"),
    "#watches": ("when", "of", "webhook", "since"),
}


class ProfileScreen(Screen[None]):
    """Generate, regenerate or delete the profile token; revoke client tokens; approve logins.

    Device logins are never listed: ``a`` asks for the code the user's own
    ``dvc studio login`` printed, shows what it belongs to, and approves once confirmed.
    """

    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?", tooltip="every key"),
        Binding(
            "g",
            "generate",
            "Generate token",
            tooltip="generate or regenerate the profile token (asks; shown once, y copies it)",
        ),
        Binding("d", "delete", "Delete token", tooltip="delete the profile token (asks first)"),
        Binding(
            "x",
            "revoke",
            "Revoke",
            tooltip="revoke the client token, remove the SSH key, or stop the watch under the"
            " cursor (asks first)",
        ),
        Binding(
            "e",
            "edit_watch",
            "Edit watch",
            tooltip="change the watch under the cursor: its condition or webhook",
        ),
        Binding("s", "add_key", "Add SSH key", tooltip="add an SSH public key (paste it)"),
        Binding("j", "cursor(1)", show=False, tooltip="move down"),
        Binding("k", "cursor(-1)", show=False, tooltip="move up"),
        Binding(
            "a",
            "approve",
            "Approve device login",
            tooltip="approve a device login: type the code `dvc studio login` printed, confirm",
        ),
        Binding(
            "w",
            "password",
            "Password",
            tooltip="change password (optionally deleting every access token and SSH key)",
        ),
        Binding("r", "reload", "Refresh", tooltip="refresh"),
        Binding("q,escape", "app.pop_screen", "Back", tooltip="back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.info: UserInfo | None = None
        self.keys: list[SshKeyInfo] = []
        self.watches: list[WatchInfo] = []
        self.stale = False
        """The last refresh failed: what is shown may be out of date."""

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with VerticalScroll():
            yield Label("Loading…", id="who", classes="title")
            yield Label("Access tokens", classes="hint")
            tokens: DataTable[str] = DataTable(cursor_type="row", id="tokens")
            yield tokens
            yield Label(
                "dvc studio login printed a code? Press a and type it to approve the login.",
                classes="hint",
            )
            yield Label("SSH keys (they log you in to `ssh -t` this server)", classes="hint")
            keys: DataTable[str] = DataTable(cursor_type="row", id="keys")
            yield keys
            yield Label(
                "My watches (! on an experiment or a metric cell sets one; A lists alerts)",
                classes="hint",
            )
            watches: DataTable[str] = DataTable(cursor_type="row", id="watches")
            yield watches
        yield Footer(compact=True)

    def on_mount(self) -> None:
        bar = self.query_one(StatusBar)
        bar.server = studio(self).shown_server
        bar.place = "profile"
        # No event stream here: the bar tells how the last refresh went instead.
        bar.connection = "loading…"
        self.query_one("#tokens", DataTable).focus()
        self.load()
        self.set_interval(REFRESH_SECONDS, self._refresh_if_shown)
        self.set_interval(AGO_EVERY, self._retell)

    def _refresh_if_shown(self) -> None:
        loading = any(
            w.node is self and w.group == "profile" and w.is_running for w in self.workers
        )
        if self.is_current and not loading:  # never cancels a load asked for
            self.load(quiet=True)

    @work(group="profile", exclusive=True, exit_on_error=False)
    async def load(self, quiet: bool = False) -> None:
        """Fetch the user's tokens, SSH keys and watches."""
        api = studio(self).api
        try:
            self.info = await api.user()
            self.keys = await api.ssh_keys()
            self.watches = await api.watches()
        except SessionExpired as exc:
            studio(self).report(exc)
            return
        except ApiError as exc:
            self._show_refresh(False, reachable=exc.status != 0)
            if not quiet:
                studio(self).report(exc)
            elif not self.stale:  # said once, not every half minute
                self.notify(
                    f"The profile could not refresh itself: {exc.detail} It shows what it"
                    " last had; r tries again.",
                    severity="warning",
                )
            self.stale = True
            return
        self.stale = False
        self._show_refresh(True)
        self.render_info()

    def _retell(self) -> None:
        # "last used 54s ago" between refreshes: drawn again from what was fetched, each
        # table left scrolled where it was (rebuilt, it went back to its cursor).
        if not self.is_current:
            return
        tables = list(self.query(DataTable))
        scrolled = [(t.scroll_x, t.scroll_y) for t in tables]
        self.render_info()
        for table, (x, y) in zip(tables, scrolled, strict=True):
            table.scroll_to(x, y, animate=False, immediate=True)

    def _show_refresh(self, ok: bool, reachable: bool = True) -> None:
        bar = self.query_one(StatusBar)
        bar.connected = ok
        if ok:
            bar.connection = "refreshed " + clock.utcnow().strftime("%H:%M:%S UTC")
            return
        what = "offline" if not reachable else "refresh failed"
        bar.connection = f"{what} (r retries)" if self.info is None else f"{what}: as last seen"

    def render_info(self) -> None:
        info = self.info
        if info is None:
            return
        now = clock.utcnow()
        self.refresh_bindings()  # which of d, x, e apply follows what there is
        admin = " (admin)" if info.is_admin else ""
        self.query_one("#who", Label).update(f"User {info.username}{admin}")
        tokens = ([info.profile_token] if info.profile_token else []) + info.client_tokens
        self._fill(
            "#tokens",
            [
                ("profile" if t.kind == "profile" else f"client:{t.id}", token_cells(t, now))
                for t in tokens
            ],
            ["", "", "no tokens: press g to generate one", "", "", ""],
        )
        self._fill(
            "#keys",
            [
                (
                    str(key.id),
                    [
                        short_fingerprint(key.fingerprint),
                        key.key_type.removeprefix("ssh-"),
                        key.comment,
                        time_ago(key.created_at, now),
                        (time_ago(key.last_used_at, now) if key.last_used_at else "never")
                        if key.confirmed
                        else "unconfirmed",
                    ],
                )
                for key in self.keys
            ],
            ["no keys: press s to add one", "", "", "", ""],
        )
        self._fill(
            "#watches",
            [
                (
                    str(watch.id),
                    [
                        watch.describe(),
                        f"{'experiment' if watch.experiment_id is not None else 'project'}"
                        f" {watch.target}",
                        "yes" if watch.webhook_url else "",
                        time_ago(watch.created_at, now),
                    ],
                )
                for watch in self.watches
            ],
            ["no watches: press ! on an experiment to set one", "", "", ""],
        )

    def _fill(self, table_id: str, rows: list[tuple[str, list[str]]], empty: list[str]) -> None:
        """Show ``rows`` (key, cells) in the table, or ``empty`` when there are none.

        The columns are made anew each time: a DataTable's columns only ever widen, so
        after a "no tokens: press g…" row the name column kept its width and pushed
        "created" and "last used" off an 80-column screen. The cursor stays on its row
        (the screen refreshes itself every half minute).
        """
        table: DataTable[Any] = self.query_one(table_id, DataTable)
        cursor = table.cursor_row
        was_on = cursor_key(table)
        table.clear(columns=True)
        for column in COLUMNS[table_id]:
            table.add_column(column, key=column)
        for key, cells in rows:
            table.add_row(*map(plain, cells), key=key)
        if not rows:
            table.add_row(*empty, key="none")
        if was_on is not None and was_on in table.rows:  # the same token, key or watch
            cursor = table.get_row_index(was_on)
        table.move_cursor(row=min(max(cursor, 0), table.row_count - 1))

    def action_cursor(self, rows: int) -> None:
        """``j``/``k``: move in the focused list, as ``↓``/``↑`` do."""
        focused = self.focused
        table = focused if isinstance(focused, DataTable) else self.query_one("#tokens", DataTable)
        table.action_cursor_down() if rows > 0 else table.action_cursor_up()

    def action_add_key(self) -> None:
        self.app.push_screen(KeyDialog(send=self._add_key))

    async def _add_key(self, text: str) -> None:
        """Sent from the dialog, which shows a refusal (see ``dialogs.sent``)."""
        key = await studio(self).api.add_ssh_key(text)
        self.notify(
            f"Added {key.fingerprint}. Its first SSH login (ssh -t YOURNAME@host) asks for"
            " your password, once, to prove the key is yours."
        )
        self.load()

    def _remove_key(self) -> None:
        chosen = self._current_key("#keys")
        key = next((k for k in self.keys if str(k.id) == chosen), None)
        if key is None:
            self.notify("No SSH key here; press s to add one.")
            return
        self.app.push_screen(
            ConfirmDialog(
                f"Remove the SSH key {key.fingerprint} ({key.comment or 'no comment'})?"
                " It stops logging in at once.",
                "Remove",
            ),
            if_confirmed(lambda: self._remove_key_now(key.id)),
        )

    @work(group="keys", exclusive=True, exit_on_error=False)
    async def _remove_key_now(self, key_id: int) -> None:
        try:
            await studio(self).api.remove_ssh_key(key_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.notify("SSH key removed.")
        self.load()

    def _remove_watch(self) -> None:
        watch = self._watch_under_cursor()
        if watch is None:
            self.notify("No watch here; press ! on an experiment in a project to set one.")
            return
        self.app.push_screen(
            ConfirmDialog(f"Stop watching for {watch.describe()} on {watch.target}?", "Stop"),
            if_confirmed(lambda: self._remove_watch_now(watch.id)),
        )

    def _watch_under_cursor(self) -> WatchInfo | None:
        chosen = self._current_key("#watches")
        return next((w for w in self.watches if str(w.id) == chosen), None)

    def action_edit_watch(self) -> None:
        from tui.screens.watch_dialog import WatchDialog, target_of

        table = self.query_one("#watches", DataTable)
        watch = self._watch_under_cursor()
        if watch is None:
            self.notify("No watch to change; press ! on an experiment in a project to set one.")
            return
        if self.focused is not table:
            table.focus()
            self.notify("Move to the watch to change in My watches, then press e.")
            return

        async def save(changed: WatchCreate) -> None:
            await self._update_watch(watch.id, changed)

        self.app.push_screen(WatchDialog(target_of(watch), editing=watch, send=save))

    async def _update_watch(self, watch_id: int, watch: WatchCreate) -> None:
        """Sent from the form, which shows a refusal (see ``dialogs.sent``)."""
        changed = await studio(self).api.update_watch(watch_id, watch)
        self.notify(f"Now watching for {changed.describe()} on {changed.target}.")
        self.load()

    @work(group="watches", exclusive=True, exit_on_error=False)
    async def _remove_watch_now(self, watch_id: int) -> None:
        try:
            await studio(self).api.delete_watch(watch_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.notify("Watch stopped.")
        self.load()

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
            if_confirmed(self._generate),
        )

    @work(group="token", exclusive=True, exit_on_error=False)
    async def _generate(self) -> None:
        try:
            new = await studio(self).api.generate_token()
        except ApiError as exc:
            studio(self).report(exc)
            return
        studio(self).profile_token_replaced(new.token)
        self.app.push_screen(TokenDialog(new.token))
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Keys for what is not there leave the footer (and do nothing: the table says
        # "no tokens: press g…" and the like).
        info = self.info
        if info is None:
            return True
        if action == "delete":
            return info.profile_token is not None
        if action == "edit_watch":
            return bool(self.watches)
        if action == "revoke":
            return bool(info.client_tokens or self.keys or self.watches)
        return True

    def action_delete(self) -> None:
        if self.info is None or self.info.profile_token is None:
            self.notify("You have no profile token to delete.")
            return
        self.app.push_screen(
            ConfirmDialog("Delete your profile token? Runs using it will be refused.", "Delete"),
            if_confirmed(self._delete),
        )

    @work(group="token", exclusive=True, exit_on_error=False)
    async def _delete(self) -> None:
        try:
            await studio(self).api.delete_token()
        except ApiError as exc:
            studio(self).report(exc)
            return
        studio(self).profile_token_replaced(None)
        self.notify("Profile token deleted.")
        self.load()

    def _current_key(self, table_id: str) -> str | None:
        return cursor_key(self.query_one(table_id, DataTable))

    def action_revoke(self) -> None:
        if self.focused is self.query_one("#keys", DataTable):
            self._remove_key()
            return
        if self.focused is self.query_one("#watches", DataTable):
            self._remove_watch()
            return
        key = self._current_key("#tokens")
        if key is None or not key.startswith("client:"):
            self.notify(
                "Move to a client token in the tokens table first (d deletes the profile token)."
            )
            return
        token_id = int(key.split(":", 1)[1])
        assert self.info is not None  # a client token row is shown only once info is loaded
        token = next(t for t in self.info.client_tokens if t.id == token_id)
        self.app.push_screen(
            ConfirmDialog(f"Revoke the client token {token.name!r}?", "Revoke"),
            if_confirmed(lambda: self._revoke(token_id)),
        )

    @work(group="token", exclusive=True, exit_on_error=False)
    async def _revoke(self, token_id: int) -> None:
        try:
            await studio(self).api.delete_client_token(token_id)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.notify("Client token revoked.")
        self.load()

    def action_approve(self) -> None:
        found: list[PendingLogin] = []

        async def look_up(code: str) -> None:
            found.append(await studio(self).api.lookup_device_login(code))

        def typed(code: str | None) -> None:
            if code and found:
                login = found[-1]
                self.app.push_screen(
                    ConfirmDialog(login_question(login, clock.utcnow()), "Approve"),
                    if_confirmed(lambda: self._approve(login.user_code)),
                )

        self.app.push_screen(CodeDialog(send=look_up), typed)

    @work(group="approve", exclusive=True, exit_on_error=False)
    async def _approve(self, code: str) -> None:
        try:
            name = await studio(self).api.approve_device_login(code)
        except ApiError as exc:
            studio(self).report(exc)
            return
        self.notify(f"Approved: the client receives the token {name!r}.")
        self.load()
        # The token is minted when the client next asks (DVC polls every 5 s): list it then.
        for after in (6.0, 12.0):
            self.set_timer(after, self._refresh_if_shown)

    def action_password(self) -> None:
        self.app.push_screen(PasswordDialog(send=self._change_password))

    async def _change_password(self, current: str, new: str, reset_tokens: bool) -> None:
        """Sent from the dialog, which shows a refusal (see ``dialogs.sent``)."""
        await studio(self).api.change_password(current, new, reset_tokens)
        extra = " Every access token and SSH key was deleted." if reset_tokens else ""
        if reset_tokens:
            studio(self).profile_token_replaced(None)
        self.notify("Password changed." + extra)
        self.load()

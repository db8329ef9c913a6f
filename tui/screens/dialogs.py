"""Modal dialogs: confirmation, new token (shown once), password change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from tui.client import ApiError, SessionExpired
from tui.sanitize import plain
from tui.screens.fields import TYPE_AHEAD_BINDINGS, TypeAheadForm
from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.shell_lines import ShellLines

ResultT = TypeVar("ResultT")


class DialogScreen(ModalScreen[ResultT]):
    """A dialog over the screen it was opened from, with a footer of its own keys."""

    def on_mount(self) -> None:
        # Its own footer, at the bottom: the screen beneath lays its footer out for its own
        # keys (three lines at 60 columns), and the dialog's `esc Cancel` sat behind it.
        self.mount(Footer(compact=True))
        # Read from the top on a short terminal: focusing a field or button scrolled the
        # dialog down to it, past its title and first lines (the keys work wherever it is).
        for dialog in self.query(".dialog"):
            self.call_after_refresh(dialog.scroll_home, animate=False)


class SendingDialog(DialogScreen[ResultT]):
    """A dialog that may send what was typed itself (see ``sent``) and closes once, and only
    itself: the answer may come while another screen (the palette) is on top of it, or
    after escape closed it (``dismiss`` pops whatever is on top)."""

    _answered = False
    _answer_later: tuple[ResultT] | None = None

    def close(self, value: ResultT) -> None:
        """Dismiss with ``value`` now, or once back on top; never twice."""
        if self._answered or self not in self.app.screen_stack:
            return
        if self.app.screen_stack[-1] is self:  # (is_current holds under the palette)
            self._answered = True
            self.dismiss(value)
        else:
            self._answer_later = (value,)

    def on_screen_resume(self) -> None:
        if self._answer_later is not None:
            (value,) = self._answer_later
            self._answer_later = None
            self.close(value)

    sending = False
    """A request is on its way (a second enter typed in a burst sends nothing more)."""

    def answer(self, value: ResultT, send: Callable[[], Awaitable[object]] | None) -> None:
        """Close with ``value``; given ``send``, only once the server accepts it."""
        if send is None:
            self.close(value)
        elif not self.sending:
            self.sending = True
            self._send_then_close(value, send)

    @work(group="send", exit_on_error=False)
    async def _send_then_close(self, value: ResultT, send: Callable[[], Awaitable[object]]) -> None:
        try:
            if await sent(self, send):
                self.close(value)
        finally:
            self.sending = False


async def sent(dialog: SendingDialog[Any], send: Callable[[], Awaitable[object]]) -> bool:
    """Send what a dialog holds; refused, say why in its ``#problem`` line and keep it open.

    What was typed stays for the user to correct (a refusal closed the dialog and lost it).
    """
    problem = dialog.query_one("#problem", Label)
    problem.update("Sending…")
    try:
        await send()
    except SessionExpired as exc:
        dialog.close(None)
        studio(dialog).report(exc)
        return False
    except ApiError as exc:
        problem.update(plain(exc.detail))  # it repeats what was typed: never markup
        return False
    return True


def if_confirmed(action: Callable[[], object]) -> Callable[[bool | None], None]:
    """A dialog callback that runs ``action`` when the answer was yes."""

    def answered(ok: bool | None) -> None:
        if ok:
            action()

    return answered


class ConfirmDialog(DialogScreen[bool]):
    """Yes or no; ``y``/``enter`` confirm, ``n``/``esc`` cancel."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, verb: str = "OK") -> None:
        super().__init__()
        self.question = question
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.question))  # names in it come from whoever posts runs
            with Horizontal():
                yield Button("Cancel", id="no")
                yield Button(self.verb, variant="error", id="yes")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class CopyDialog(DialogScreen[None]):
    """Text to take elsewhere, shown in full, with copy to clipboard (OSC 52 works over SSH)."""

    BINDINGS = [Binding("y", "copy", "Copy"), Binding("escape,enter", "close", "Close")]

    def __init__(
        self, intro: str, value: str, hint: str, copied: str, *, shell: bool = False
    ) -> None:
        """``shell``: ``value`` is shell lines, folded with a backslash where they wrap (so
        that lines copied with the mouse still paste as the same commands)."""
        super().__init__()
        self.intro = intro
        self.value = value
        self.hint = hint
        self.copied = copied
        self.shell = shell

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog copy-dialog"):
            yield Label(self.intro)
            yield (ShellLines if self.shell else Static)(self.value, id="token-value")
            yield Label(self.hint, classes="hint")
            with Horizontal():
                yield Button("Copy", id="copy")
                yield Button("Done", variant="primary", id="done")

    def on_mount(self) -> None:
        self.query_one("#done", Button).focus()  # enter closes (on Copy it would copy)

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.value)
        self.notify(self.copied)

    @on(Button.Pressed, "#done")
    def action_close(self) -> None:
        self.dismiss(None)


class TokenDialog(CopyDialog):
    """A new token, shown exactly once."""

    def __init__(self, token: str) -> None:
        super().__init__(
            "Your new access token. It is shown only this once:",
            token,
            "Use it as DVC_STUDIO_TOKEN. y copies it to the clipboard.",
            "Token copied to the clipboard.",
        )
        self.token = token


class PasswordDialog(
    # SendingDialog (a ModalScreen) first: with the plain Screen of TypeAheadForm ahead of
    # it, the dialog hid the screen beneath and its footer (`esc Cancel`) entirely.
    SendingDialog[tuple[str, str, bool] | None],
    TypeAheadForm[tuple[str, str, bool] | None],
):
    """Current and new password, and whether to delete every access token and SSH key too.

    Enter in the last field changes the password: enter, enter must never tick "delete my
    tokens and SSH keys" (space ticks it).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), *TYPE_AHEAD_BINDINGS]
    LAST_FIELD = "again"

    def __init__(self, send: Callable[[str, str, bool], Awaitable[object]] | None = None) -> None:
        super().__init__()
        self._send = send

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog compact-form"):
            yield Label("Change your password")
            yield Input(placeholder="current password", password=True, id="current")
            yield Input(placeholder="new password (8 characters or more)", password=True, id="new")
            yield Input(placeholder="new password again", password=True, id="again")
            yield Checkbox("Also delete my access tokens and SSH keys", id="reset")
            yield Label("", id="problem", classes="hint problem")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Change", variant="primary", id="change")

    AUTO_FOCUS = "#current"

    def submit(self) -> None:
        self.change()

    @on(Button.Pressed, "#change")
    def change(self) -> None:
        current = self.query_one("#current", Input).value
        new = self.query_one("#new", Input).value
        if new != self.query_one("#again", Input).value:
            self.query_one("#problem", Label).update("The new passwords do not match.")
            return
        if len(new) < 8:
            self.query_one("#problem", Label).update("The new password needs 8 characters or more.")
            return
        answer = (current, new, self.query_one("#reset", Checkbox).value)
        send = self._send
        self.answer(answer, None if send is None else lambda: send(*answer))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.close(None)


class TextDialog(SendingDialog[str | None]):
    """One line to type: a title, what to type, and the verb that sends it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    TITLE_TEXT = ""
    HINT = ""
    PLACEHOLDER = ""
    VERB = "OK"
    FIELD = "text"
    MAX_LENGTH = 0

    def __init__(self, send: Callable[[str], Awaitable[object]] | None = None) -> None:
        """``send``: the request the text makes, made from the dialog, which stays open
        with the server's reason while it is refused; None: the caller makes it."""
        super().__init__()
        self._send = send

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.TITLE_TEXT)
            yield Label(self.HINT, classes="hint")
            yield Input(placeholder=self.PLACEHOLDER, id=self.FIELD, max_length=self.MAX_LENGTH)
            yield Label("", id="problem", classes="hint problem")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(self.VERB, variant="primary", id="ok")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        value = self.query_one(Input).value.strip()
        if not value:
            self.close(None)
            return
        problem = self.problem(value)
        if problem is not None:
            self.query_one("#problem", Label).update(problem)
            return
        send = self._send
        self.answer(value, None if send is None else lambda: send(value))

    def problem(self, value: str) -> str | None:
        """What is wrong with the text, seen before it is sent (None: nothing)."""
        return None

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.close(None)


class CodeDialog(TextDialog):
    """Type the code a ``dvc studio login`` printed (codes are never listed to anyone)."""

    TITLE_TEXT = "Approve a device login"
    HINT = "Type the code your own `dvc studio login` printed, e.g. BCDF-GHJK."
    PLACEHOLDER = "code"
    VERB = "Next"
    FIELD = "code"
    MAX_LENGTH = 16


class KeyDialog(TextDialog):
    """Paste an SSH public key (one line of ``~/.ssh/id_ed25519.pub``)."""

    TITLE_TEXT = "Add an SSH key"
    HINT = (
        "Paste one line of your public key file (cat ~/.ssh/id_ed25519.pub); it then"
        " logs you in to `ssh -t` this server."
    )
    PLACEHOLDER = "ssh-ed25519 AAAA… you@laptop"
    VERB = "Add"
    FIELD = "key"

    def problem(self, value: str) -> str | None:
        if "PRIVATE KEY" in value:  # never sent: it would leave the user's machine
            return "That is a private key: keep it to yourself, and paste the .pub file's line."
        return None


class InviteDialog(TextDialog):
    """Type the username of someone to invite to a project."""

    TITLE_TEXT = "Invite to the project"
    HINT = (
        "Their username on this server. They join, and their runs show here, once they"
        " accept (their projects screen lists the invitation)."
    )
    PLACEHOLDER = "username"
    VERB = "Invite"
    FIELD = "username"
    MAX_LENGTH = 64

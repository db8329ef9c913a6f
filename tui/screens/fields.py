"""Forms whose keys may be typed ahead: a password manager's auto-type, a fast typist."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Button, Input

TYPE_AHEAD_BINDINGS: list[BindingType] = [
    # Priority: applied as each key arrives, so keys typed ahead land in the field they
    # were meant for; as the fields' own keys they ran only after the keys behind them had
    # already reached the old field ("bob", tab, "secret" gave a username "bobsecret").
    Binding("tab", "next_field", show=False, priority=True),
    Binding("shift+tab", "previous_field", show=False, priority=True),
    Binding("enter", "advance", show=False, priority=True),
]


ResultT = TypeVar("ResultT")


class TypeAheadForm(Screen[ResultT]):
    """Tab, shift+tab and enter move between fields as they are typed; enter in the
    ``LAST_FIELD`` (or on a button) calls ``submit`` once every field has its keys."""

    LAST_FIELD = ""

    def submit(self) -> None:
        """Send the form."""
        raise NotImplementedError

    def action_next_field(self) -> None:
        self.focus_next()

    def action_previous_field(self) -> None:
        self.focus_previous()

    def action_advance(self) -> None:
        """Enter: the next field; in the last field or on a button, the form is sent."""
        focused = self.focused
        if isinstance(focused, Button):
            if focused.id == "cancel":
                self._after_typed([], focused.press)
            else:
                self._after_typed(list(self.query(Input)), self.submit)
        elif focused is not None and focused.id == self.LAST_FIELD:
            self._after_typed(list(self.query(Input)), self.submit)
        else:
            self.focus_next()

    def _after_typed(self, fields: list[Input], then: Callable[[], object]) -> None:
        """Run ``then`` once every field has taken the keys typed into it before (each field
        takes its keys in its own turn, after the binding that calls this has run)."""
        if not fields:
            # Only while the form is on top: a second enter typed before the first was done
            # dismissed the screen under a dialog that was already gone.
            if self.is_current:
                then()
            return
        fields[0].call_later(self._after_typed, fields[1:], then)

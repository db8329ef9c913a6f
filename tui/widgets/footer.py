"""The footer every screen shows: every key that applies, wrapped onto more lines as needed.

Textual's own footer is one line that cuts off what does not fit: at 80 columns the project
screen's keys need two. This one lays the keys out like words in a paragraph, never
splitting a key from its description, and grows to as many lines as the width needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.screen import ModalScreen, Screen
from textual.widget import Widget

ROOMY, TIGHT = 2, 1  # cells between two keys: two read better, one when it saves a line


@dataclass(frozen=True, slots=True)
class FooterEntry:
    """One key as the footer shows it."""

    key: str  # what a click presses
    display: str  # what the footer prints for it
    description: str
    enabled: bool

    @property
    def width(self) -> int:
        return Text(f"{self.display} {self.description}").cell_len


@dataclass(frozen=True, slots=True)
class Placed:
    """Where an entry landed: its line and first and last-plus-one cell."""

    entry: FooterEntry
    line: int
    start: int
    end: int


def lay_out(entries: list[FooterEntry], width: int) -> list[Placed]:
    """Places ``entries`` on as few lines of ``width`` cells as word wrapping gives.

    Keys are two cells apart unless one cell apart takes fewer lines.
    """
    roomy, tight = _wrap(entries, width, ROOMY), _wrap(entries, width, TIGHT)
    return tight if roomy and roomy[-1].line > tight[-1].line else roomy


def _wrap(entries: list[FooterEntry], width: int, gap: int) -> list[Placed]:
    placed: list[Placed] = []
    line = column = 0
    for entry in entries:
        if column and column + gap + entry.width > width:
            line, column = line + 1, 0
        start = column + (gap if column else 0)
        column = start + entry.width
        placed.append(Placed(entry, line, start, column))
    return placed


class Footer(Widget, can_focus=False):
    """The keys of the focused widget, its screen and the app, every one of them."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"footer-key--key", "footer-key--description"}
    DEFAULT_CSS = """
    Footer {
        dock: bottom;
        height: auto;
        max-height: 50%;  /* a tiny terminal keeps room for the screen; ? lists every key */
        color: $footer-foreground;
        background: $footer-background;
        .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, compact: bool = True) -> None:
        # ``compact`` is Textual's footer's argument; this one is always compact.
        super().__init__()
        self.entries: list[FooterEntry] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.app.screen_change_signal.subscribe(self, self._screen_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)
        self.app.screen_change_signal.unsubscribe(self)

    def _screen_changed(self, _top: Screen[object]) -> None:
        # (After a refresh: a dialog just pushed has no bindings until it is mounted.)
        self.call_after_refresh(self._bindings_changed)

    def _shown(self) -> Screen[object]:
        """Whose keys to show: this screen's, or those of a dialog drawn over it (this
        footer stays in view under a dialog, whose keys are the ones that work then)."""
        stack = self.app.screen_stack
        if len(stack) > 1 and stack[-2] is self.screen and isinstance(stack[-1], ModalScreen):
            return stack[-1]
        return self.screen

    def _bindings_changed(self, _screen: Screen[object] | None = None) -> None:
        if not self.is_attached:  # (its screen closed before a deferred call)
            return
        screen = self._shown()
        entries: list[FooterEntry] = []
        actions: set[str] = set()
        palette = None
        for _node, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.action == "app.command_palette" or binding.key == "ctrl+p":
                palette = FooterEntry(binding.key, "^p", "palette", enabled)
                continue
            if not binding.show or binding.action in actions:
                continue  # one entry per action: its first key (``q`` for ``q,escape``)
            actions.add(binding.action)
            display = self.app.get_key_display(binding)
            entries.append(FooterEntry(binding.key, display, binding.description, enabled))
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            entries.append(palette)
        if entries != self.entries:
            self.entries = entries
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        placed = lay_out(self.entries, width)
        return placed[-1].line + 1 if placed else 1

    def render(self) -> Text:
        key_style = self.get_component_rich_style("footer-key--key")
        description_style = self.get_component_rich_style("footer-key--description")
        text = Text(no_wrap=True, overflow="ellipsis")
        line = column = 0
        for place in lay_out(self.entries, self.content_region.width):
            if place.line != line:
                text.append("\n" * (place.line - line))
                line, column = place.line, 0
            text.append(" " * (place.start - column))
            dim = Style() if place.entry.enabled else Style(dim=True)
            text.append(place.entry.display, key_style + dim)
            text.append(f" {place.entry.description}", description_style + dim)
            column = place.end
        return text

    def on_click(self, event: events.Click) -> None:
        for place in lay_out(self.entries, self.content_region.width):
            if place.line == event.y and place.start <= event.x < place.end:
                if place.entry.enabled:
                    self.app.simulate_key(place.entry.key)
                else:
                    self.app.bell()
                return

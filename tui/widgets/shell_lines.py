"""Shell lines shown so that copying them with the mouse still pastes the same commands."""

from __future__ import annotations

from textual.widgets import Static

from tui.format import shell_fold


class ShellLines(Static):
    """Shell lines folded to the widget's width (``shell_fold``): wrapped by the terminal
    instead, a token broke mid-word and pasted as two commands."""

    def __init__(self, text: str, *, id: str | None = None) -> None:
        super().__init__(text, id=id, markup=False)
        self.text = text

    def on_resize(self) -> None:
        width = self.content_size.width
        folded = [p for line in self.text.splitlines() for p in shell_fold(line, width)]
        self.update("\n".join(folded))

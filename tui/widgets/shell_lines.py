"""Shell lines shown so that copying them with the mouse still pastes the same commands."""

from __future__ import annotations

from textual.widgets import Static

from tui.format import head_cut, shell_fold


class ShellLines(Static):
    """Shell lines folded to the widget's width between words (``shell_fold``); a word
    still too wide (a token on a narrow terminal) is cut with "…" in sight, and ``y`` copies
    it whole. Wrapped by the terminal, or folded inside the token, a mouse copy pasted
    a cut token without a word of warning."""

    def __init__(self, text: str, *, id: str | None = None) -> None:
        super().__init__(text, id=id, markup=False)
        self.text = text

    def on_resize(self) -> None:
        width = self.content_size.width
        folded = [p for line in self.text.splitlines() for p in shell_fold(line, width)]
        shown = [head_cut(piece, width) if width >= 2 else piece for piece in folded]
        self.update("\n".join([*shown, CUT_NOTE] if shown != folded else shown))


CUT_NOTE = "(cut to fit the screen: y copies the lines whole)"

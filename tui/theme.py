"""The few named styles of the TUI, in one place."""

from __future__ import annotations

import os

from rich.style import Style


def no_color() -> bool:
    """Whether the user asked for no colour (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


FADE = (0.6, 0.8)
"""Where in its highlight a changed value steps down to the next, paler stage."""
_ORANGE = ("#ffaf00", "#d78700", "#af8700")
"""xterm's Orange1, Orange3 and a darker one: on a 16-colour terminal they become bright
yellow and yellow, never the red a worse Δ base or a failure shows (the earlier
``#ff8700`` became the same bright red)."""


def highlight(stage: int = 0) -> Style:
    """A value that changed in the last few seconds: orange fading back in three stages
    (bright and bold, then paler, then faint); without colour, bold reverse, then bold."""
    if no_color():
        return Style(bold=True, reverse=stage < 2)
    return Style(bold=stage == 0, color=_ORANGE[stage])


STATUS_STYLE = {
    "running": Style(color="#5fafff", bold=True),
    "completed": Style(color="#5faf5f"),
    "failed": Style(color="#ff5f5f", bold=True),
    "stopped": Style(color="#a8a8a8"),
}
BEST = Style(bold=True, underline=True)
DIFFERS = Style(bold=True, italic=True)
GROUP = Style(bold=True, dim=False)
STALLED = Style(color="#ffaf00", bold=True)
BETTER = Style(color="#5faf5f", bold=True)
"""Better than the baseline (bold, so it still reads without colour)."""
WORSE = Style(color="#ff5f5f")

"""Desktop notifications through the terminal: OSC 9 and OSC 777, which travel over SSH.

OSC 9 is understood by iTerm2, WezTerm, Windows Terminal, kitty and foot; OSC 777 by
urxvt, foot, WezTerm and kitty too. A terminal that knows neither ignores both. Inside
tmux they reach the outer terminal only with ``set -g allow-passthrough on``.
"""

from __future__ import annotations

from shared.text import printable

MAX_TEXT = 200


def _field(text: str) -> str:
    # No control character may end the sequence early; ';' separates OSC 777's fields.
    return printable(text).replace(";", ",")[:MAX_TEXT]


def notification(title: str, body: str) -> str:
    """The escape sequences that raise one desktop notification."""
    title, body = _field(title), _field(body)
    return f"\x1b]9;{title}: {body}\x07\x1b]777;notify;{title};{body}\x07"

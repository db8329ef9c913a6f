"""Text that ends up on someone's terminal: what may not reach it unescaped.

Names, repository URLs and messages come from any token holder and are drawn by the TUI
of every project member. A raw ESC starts an ANSI sequence (cursor moves, colour, OSC 52
clipboard writes), a carriage return or backspace overwrites what was drawn, and bidi
controls reorder a line so that it reads differently from what it holds. The server
refuses them in identifiers; the TUI escapes them in everything else it draws.
"""

from __future__ import annotations

import re

# Invisible ones: `f1` and `f1` + a zero-width space would look like one run. (Not the
# zero-width joiners, which scripts and emoji need.)
_INVISIBLE = (
    "\u00ad\u180e\u200b\u2060-\u2064\u206a-\u206f\ufeff\ufff9-\ufffb\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069" + _INVISIBLE
_INVISIBLE_CHAR = re.compile(f"[{_INVISIBLE}]")
UNSAFE = re.compile(f"[{_UNSAFE}]")
"""Control characters (but tab and newline), bidirectional formatting characters and
invisible ones (zero-width spaces, soft hyphens, tags)."""
_UNSAFE_OR_BREAK = re.compile(f"[{_UNSAFE}\t\n\u2028\u2029]")
"""The same, and tab and line breaks: nothing an identifier (one line) may hold."""


def control_problem(label: str, text: str) -> str | None:
    """``"{label} contains the control character U+001B"``, or None when ``text`` is plain.

    For identifiers (names, URLs, paths): they are one line wherever they are shown, and a
    newline in a run's name would forge a second line in an alert's chat message.
    """
    found = _UNSAFE_OR_BREAK.search(text)
    if found is None:
        return None
    char = found.group()
    kind = "invisible" if _INVISIBLE_CHAR.match(char) else "control"
    return f"{label} contains the {kind} character U+{ord(char):04X}"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, multiline: bool = False) -> str:
    """``text`` with every unsafe character spelled as a visible escape (``\\x1b``).

    Tabs and newlines are kept when ``multiline`` (error texts), escaped otherwise.
    """
    pattern = UNSAFE if multiline else _UNSAFE_OR_BREAK
    return pattern.sub(_escape, text) if pattern.search(text) else text

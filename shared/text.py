"""Text that ends up on someone's terminal: what may not reach it unescaped.

Names, repository URLs and messages come from any token holder and are drawn by the TUI
of every project member. A raw ESC starts an ANSI sequence (cursor moves, colour, OSC 52
clipboard writes), a carriage return or backspace overwrites what was drawn, and bidi
controls reorder a line so that it reads differently from what it holds. The server
refuses them in identifiers; the TUI escapes them in everything else it draws.
"""

from __future__ import annotations

import re

_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
UNSAFE = re.compile(f"[{_UNSAFE}]")
"""Control characters (but tab and newline) and bidirectional formatting characters."""
_UNSAFE_OR_BREAK = re.compile(f"[{_UNSAFE}\t\n\u2028\u2029]")
"""The same, and tab and line breaks: nothing an identifier (one line) may hold."""
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u200b\u2060-\u2064\u206a-\u206f\u2800"
    "\u3164\ufeff\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0001]"
)
"""Characters that show as nothing (zero-width spaces, soft hyphens, fillers): `f1` and
`f1` + one of them would read as one run. Not the zero-width joiners, variation selectors
or tags, which scripts, emoji and flags need."""


def control_problem(label: str, text: str, *, invisible: bool = False) -> str | None:
    """``"{label} contains the control character U+001B"``, or None when ``text`` is plain.

    For identifiers (names, URLs, paths): they are one line wherever they are shown, and a
    newline in a run's name would forge a second line in an alert's chat message. With
    ``invisible``, characters that show as nothing are refused too: for the names that
    tell runs and projects apart (not for metric and plot names, which are kept as sent:
    refusing one would refuse a whole step of a real run).
    """
    found = _UNSAFE_OR_BREAK.search(text)
    if found is not None:
        return f"{label} contains the control character U+{ord(found.group()):04X}"
    found = _INVISIBLE.search(text) if invisible and not text.isascii() else None
    if found is not None:
        return f"{label} contains the invisible character U+{ord(found.group()):04X}"
    return None


def one_line(text: str, limit: int) -> str:
    """``text`` as a short label: no control or invisible characters, every run of spaces
    and line breaks (Unicode's too) one space, at most ``limit`` characters. For names a
    client chooses freely and someone else reads before acting on them (a device login's):
    a line break or a row of blank fillers would start a line of the client's own."""
    return " ".join(_INVISIBLE.sub("", UNSAFE.sub("", text)).split())[:limit]


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, multiline: bool = False) -> str:
    """``text`` with every unsafe character spelled as a visible escape (``\\x1b``).

    Tabs and newlines are kept when ``multiline`` (error texts), escaped otherwise.
    """
    pattern = UNSAFE if multiline else _UNSAFE_OR_BREAK
    return pattern.sub(_escape, text) if pattern.search(text) else text

"""Every way an unsafe character can be spelt in a server's JSON is caught before drawing."""

from __future__ import annotations

import json

from shared.text import UNSAFE
from tui.sanitize import decode


def _unsafe_characters() -> list[str]:
    return [chr(c) for c in range(0x2070) if UNSAFE.match(chr(c))]


def test_each_unsafe_character_raw_or_escaped_in_either_case_is_made_printable() -> None:
    unsafe = _unsafe_characters()
    assert "\x1b" in unsafe and "\x7f" in unsafe and "\u200e" in unsafe and "\u2069" in unsafe
    for char in unsafe:
        escaped = f"\\u{ord(char):04x}"
        spellings = {escaped, escaped.upper().replace("\\U", "\\u")}
        if ord(char) >= 0x20:  # JSON lets these through unescaped
            spellings.add(char)
        for spelling in spellings:
            raw = ('{"name": "a' + spelling + 'b", "tags": ["' + spelling + '"]}').encode()
            assert json.loads(raw)["name"] == f"a{char}b"  # (the spelling is valid JSON)
            value = decode(raw)
            assert char not in value["name"] and char not in value["tags"][0], repr(spelling)

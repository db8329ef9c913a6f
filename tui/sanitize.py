"""Decoding server answers so nothing in them can drive the terminal.

Names, messages, error texts, metric and param names come from whoever holds a token
for the project. The server refuses control characters in identifiers, but error texts
(a training script's stderr) and old data may still hold ESC, CR or bidi controls: every
string is passed through ``shared.text.printable`` before any widget draws it. The
common case pays only one scan of the raw bytes.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, overload

import msgspec
from rich.text import Text

from shared.text import printable

T = TypeVar("T")

# JSON escapes of control characters (\b \f \r and \u0000-\u001f, \u007f-\u009f, hex
# digits in either case), raw DEL, raw C1 controls and raw bidi controls in UTF-8: all an
# unsafe string can look like on the wire.
_SUSPECT = re.compile(
    rb"\\[bfr]|\\u00[01][0-9a-fA-F]|\\u00[89][0-9a-fA-F]|\\u007[fF]"
    rb"|\\u20(?:0[efEF]|2[a-eA-E]|6[6-9])|\\u061[cC]"
    rb"|\x7f|\xc2[\x80-\x9f]|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\xd8\x9c"
)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value, multiline=True)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {printable(str(k)): _clean(v) for k, v in value.items()}
    return value


@overload
def decode(raw: bytes | str, kind: type[T]) -> T: ...
@overload
def decode(raw: bytes | str, kind: None = None) -> Any: ...
def decode(raw: bytes | str, kind: type[T] | None = None) -> Any:
    """JSON ``raw`` as ``kind`` (or plain Python), with every string made printable."""
    data = raw.encode() if isinstance(raw, str) else raw
    if not _SUSPECT.search(data):
        return msgspec.json.decode(data, type=kind) if kind else msgspec.json.decode(data)
    cleaned = _clean(msgspec.json.decode(data))
    return msgspec.convert(cleaned, kind) if kind else cleaned


def plain(text: object) -> Text:
    """Text to show as it is: never read as markup.

    Textual reads plain strings in tables, labels and options as markup: a run named
    ``x[/b]`` would crash the screen, ``[@click=app.quit]`` would add an action.
    """
    return Text(str(text), end="")

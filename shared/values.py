"""Metric values on the wire: numbers, with NaN and ±infinity spelled as strings.

DVCLive sends non-finite floats as ``"nan"``, ``"inf"`` and ``"-inf"`` because JSON has no
literal for them; the read API answers the same way so nothing is lost on the way back.
"""

from __future__ import annotations

import math

WireNumber = float | int | str

_SPECIAL = {
    "nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
}


_LONGEST = 16
"""Longer than any spelling of NaN or infinity, with room for spaces around it."""


def parse_number(value: object) -> float | None:
    """Return the float a wire value stands for, or ``None`` when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float (10**400)
            return None
    if isinstance(value, str):
        # The spellings are short; a long text (a metrics file's) is not read through.
        return _SPECIAL.get(value.strip().lower()) if len(value) <= _LONGEST else None
    return None


def to_wire(value: float | None) -> WireNumber:
    """Spell a float for JSON: finite numbers stay numbers, the rest become strings.

    ``None`` is how SQLite hands back a stored NaN, so it is spelled ``"nan"`` too.
    """
    if value is None or math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value

"""Limits on the pictures a run sends, which every member's terminal decodes.

A progressive JPEG refines its picture scan by scan, and a decoder pays for every scan
over the whole picture: 20,000 repeated refinement scans in a 1 MB file took over an hour
of CPU to draw (about 25 ms a scan at 5,000 x 5,000 pixels). Cameras and libjpeg write 1
to about 12 scans; the server refuses more than ``MAX_JPEG_SCANS`` and the TUI does not
decode them.
"""

from __future__ import annotations

MAX_JPEG_SCANS = 64
JPEG_SIGNATURE = b"\xff\xd8\xff"
_START_OF_SCAN = b"\xff\xda"


def jpeg_scans(data: bytes) -> int:
    """How many scans a JPEG holds, at most (0 for anything else).

    Its start-of-scan markers, counted at memory speed: coded data escapes every 0xFF
    byte, so only a marker segment's own bytes (an embedded thumbnail's) can add to it.
    """
    return data.count(_START_OF_SCAN) if data.startswith(JPEG_SIGNATURE) else 0


def too_many_scans(data: bytes) -> str | None:
    """Why a JPEG will not be decoded, or None."""
    scans = jpeg_scans(data)
    if scans > MAX_JPEG_SCANS:
        return f"a JPEG of {scans:,} scans (at most {MAX_JPEG_SCANS} are decoded)"
    return None

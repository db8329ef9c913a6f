"""What kind of picture an image plot holds, by its first bytes.

DVCLive logs ``.png``, ``.jpg``/``.jpeg`` and ``.gif`` files and sends their bytes as they
are, so an image is served with its own type, and anything else is refused at ingestion.
"""

from __future__ import annotations

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The media type of a PNG, JPEG or GIF; None for anything else."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    return None

"""Images for the terminal: decoded with Pillow, off the UI loop, within limits.

Any project member can upload an image, so what is drawn is bounded before a pixel is
decoded: the file's size, a JPEG's scans (each costs a pass over the whole picture), then
the pixel count from its header (a 12 KB PNG can claim 20,000 x 20,000 pixels). Anything
that cannot be drawn — too big, truncated, corrupt, not an image — becomes a one-line
placeholder saying why, never an exception on the screen.

Drawing is textual-image's job: Kitty graphics, Sixel, or half blocks, whichever the
terminal supports (it asks the terminal once, when ``tui.app`` is imported, before
Textual takes the terminal over).
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError
from rich.style import Style
from rich.text import Text

from shared.images import too_many_scans

MAX_IMAGE_BYTES = 10_000_000
"""The largest image file drawn (DVCLive skips plots over 10 MB too)."""
MAX_IMAGE_PIXELS = 25_000_000
"""The most pixels an image may declare (5,000 x 5,000) to be decoded at all."""
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


class UndrawableImage(ValueError):
    """The image cannot be drawn; the message says why in a few words."""


def thumbnail(data: bytes, max_width: int, max_height: int) -> Image.Image:
    """The image as RGB, scaled to fit ``max_width`` x ``max_height`` pixels.

    Raises ``UndrawableImage`` for anything over the limits or not decodable.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise UndrawableImage(f"{len(data):,} bytes is over the {MAX_IMAGE_BYTES:,}-byte limit")
    problem = too_many_scans(data)  # (an older server stored them)
    if problem is not None:
        raise UndrawableImage(problem)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_IMAGE_PIXELS:
                raise UndrawableImage(
                    f"{width:,} x {height:,} pixels is over the {MAX_IMAGE_PIXELS:,}-pixel limit"
                )
            image.draft("RGB", (max_width, max_height))  # JPEG decodes at a fraction
            small = image.convert("RGB")
    except UndrawableImage:
        raise
    except Image.DecompressionBombError:  # Pillow's own, larger limit, checked on open
        raise UndrawableImage(f"over the {MAX_IMAGE_PIXELS:,}-pixel limit") from None
    except UnidentifiedImageError:
        raise UndrawableImage("not an image this viewer reads") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports broken files as OSError ("truncated"), SyntaxError (bad chunks)...
        raise UndrawableImage(f"damaged image ({str(exc)[:60] or type(exc).__name__})") from None
    small.thumbnail((max_width, max_height))
    return small


IMAGE_LINES = 12
"""The most lines an image takes on the plots screen."""


def cell_size(
    pixels: tuple[int, int], max_cells: int, max_lines: int = IMAGE_LINES
) -> tuple[int, int]:
    """(columns, lines) that show an image of ``pixels`` (width, height) in its shape,
    at most ``max_cells`` x ``max_lines`` and at least one cell: a terminal cell is about
    twice as tall as it is wide. A fixed height drew a 4,000 x 10 image as a square
    block, and a 10 x 3,000 one in no column at all."""
    width, height = (max(1, side) for side in pixels)
    columns = min(max_cells, max_lines * 2 * width / height)
    lines = min(max_lines, columns * height / (2 * width))
    return max(1, round(columns)), max(1, round(lines))


def half_blocks(image: Image.Image) -> Text:
    """The image as text, two pixels a cell (for plain-text output and tests)."""
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    text = Text()
    for y in range(0, height - 1, 2):
        for x in range(width):
            top, bottom = pixels[x, y], pixels[x, y + 1]
            text.append("▀", Style(color=_hex(top), bgcolor=_hex(bottom)))  # type: ignore[arg-type]
        text.append("\n")
    return text


def _hex(pixel: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*pixel)


def placeholder(reason: str) -> Text:
    """The one line shown instead of an image that cannot be drawn."""
    return Text(f"(image not drawn: {reason})", style="dim")


def render_sync(data: bytes, max_cells: int = 40, max_lines: int = 12) -> Text:
    """The image as half blocks in at most ``max_cells`` x ``max_lines``, or a placeholder."""
    try:
        return half_blocks(thumbnail(data, max_cells, max_lines * 2))
    except UndrawableImage as exc:
        return placeholder(str(exc))


async def load(data: bytes, max_width: int = 480, max_height: int = 270) -> Image.Image:
    """``thumbnail`` in a worker thread, so a large image never stalls the UI loop."""
    return await asyncio.to_thread(thumbnail, data, max_width, max_height)

"""A small PNG decoder for drawing images with half blocks (8-bit, non-interlaced).

Pillow is not a dependency of the TUI; DVCLive writes ordinary 8-bit PNGs, which this
reads. Anything else is reported as not drawable, and the image is still listed.
"""

from __future__ import annotations

import struct
import zlib

from rich.style import Style
from rich.text import Text

Pixel = tuple[int, int, int]
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class UnsupportedPng(ValueError):
    """The PNG uses a feature this decoder does not read."""


def decode(data: bytes) -> tuple[int, int, list[list[Pixel]]]:
    """(width, height, rows of RGB pixels)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise UnsupportedPng("not a PNG file")
    pos, idat, palette = 8, b"", b""
    width = height = depth = color = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if depth != 8 or interlace or color not in _CHANNELS:
        raise UnsupportedPng("only 8-bit, non-interlaced PNGs can be drawn")
    channels = _CHANNELS[color]
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    rows: list[list[Pixel]] = []
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(
            raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels
        )
        previous = line
        rows.append([_pixel(line, x * channels, color, palette) for x in range(width)])
    return width, height, rows


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = prev[i]
        corner = prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + pred) & 0xFF
    return line


def _pixel(line: bytearray, i: int, color: int, palette: bytes) -> Pixel:
    if color in (0, 4):
        return (line[i], line[i], line[i])
    if color == 3:
        j = line[i] * 3
        return (palette[j], palette[j + 1], palette[j + 2]) if j + 2 < len(palette) else (0, 0, 0)
    return (line[i], line[i + 1], line[i + 2])


def half_blocks(data: bytes, max_width: int = 40, max_height: int = 12) -> Text:
    """The image as text: each cell is two pixels (▀ with foreground top, background bottom)."""
    width, height, rows = decode(data)
    scale = max(width / max_width, height / (max_height * 2), 1.0)
    out_w, out_h = max(1, int(width / scale)), max(2, int(height / scale))
    text = Text()
    for cy in range(0, out_h - 1, 2):
        for cx in range(out_w):
            x = min(width - 1, int(cx * scale))
            top = rows[min(height - 1, int(cy * scale))][x]
            bottom = rows[min(height - 1, int((cy + 1) * scale))][x]
            text.append("▀", Style(color=_hex(top), bgcolor=_hex(bottom)))
        text.append("\n")
    return text


def _hex(pixel: Pixel) -> str:
    return "#{:02x}{:02x}{:02x}".format(*pixel)

"""Terminal graphics support, detected once, before the TUI takes the terminal over.

textual-image asks the terminal what it can draw (Kitty graphics, Sixel) when it is
imported; once Textual runs, the answers would land in its input. A terminal that does
not answer (tmux, say) is normal: textual-image falls back to half blocks, quietly rather
than printing a traceback before the TUI starts.
"""

from __future__ import annotations

import logging

logging.getLogger("textual_image").addHandler(logging.NullHandler())
logging.getLogger("textual_image").propagate = False

import textual_image.widget  # noqa: E402

ImageWidget = textual_image.widget.Image
"""The image widget of the best protocol this terminal supports."""

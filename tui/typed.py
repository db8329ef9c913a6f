"""The app as its screens and widgets know it: typed, so ``.api`` and ``.report`` check."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from tui.app import LiveStudioApp


def studio(node: DOMNode) -> LiveStudioApp:
    """The livestudio app ``node`` belongs to."""
    return cast("LiveStudioApp", node.app)

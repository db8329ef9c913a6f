"""Textual's footer, without the leak of its key widgets."""

from __future__ import annotations

from textual import widgets


class Footer(widgets.Footer):
    """The footer every screen shows.

    Each recompose (a screen coming back on top, a focus change) makes new ``FooterKey``
    widgets, and each ``data_bind``s ``compact``: an entry (key, setter) on this footer that
    Textual prunes only when ``compact`` changes, which it never does. The keys removed by
    every earlier recompose, with their styles and caches, stayed alive for as long as the
    footer (Textual issue #6666). Forcing the watchers of ``compact`` to run prunes them.
    """

    async def recompose(self) -> None:
        await super().recompose()
        self.mutate_reactive(widgets.Footer.compact)

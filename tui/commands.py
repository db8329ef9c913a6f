"""Command palette entries for the main actions."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

ACTIONS = (
    ("Show help", "Every key of every screen", "app.help"),
    ("Toggle live filter", "Show only running experiments, or all", "screen.live"),
    ("Plots", "Charts of the current or selected experiments", "screen.plots"),
    ("Compare selected", "Side by side: params and metrics", "screen.compare"),
    ("Profile and tokens", "Access tokens and password", "screen.profile"),
    ("Filter by name", "Type part of an experiment name", "screen.filter"),
    ("Trend metric: next", "The metric of the trend sparkline column", "screen.primary"),
    ("Trend metric: better is lower or higher", "Flip the trend metric's best", "screen.direction"),
    ("Sort by the current column", "Again: reverse", "screen.sort"),
    ("Pin my baseline", "The experiment Δ base compares with (again: unpin)", "screen.baseline"),
    ("Watch", "Alert me when the experiment fails, a metric crosses…", "screen.watch"),
    ("Alerts", "What my watches fired", "app.alerts"),
    ("Members", "Who is in the project; its owner invites and removes", "screen.members"),
)


class LiveStudioCommands(Provider):
    """The main actions, for whichever screen supports them."""

    def _available(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        found = []
        for title, help_text, action in ACTIONS:
            namespace, _, name = action.partition(".")
            target = self.app if namespace == "app" else screen
            if hasattr(target, f"action_{name}"):
                found.append((title, help_text, action))
        return found

    async def _run(self, action: str) -> None:
        await self.app.run_action(action, self.screen)

    async def discover(self) -> Hits:
        for title, help_text, action in self._available():
            yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._available():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(self._run, action), help=help_text
                )

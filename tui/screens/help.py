"""Every key, by screen, generated from the screens' own bindings (never written twice)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Markdown

from tui.typed import studio
from tui.widgets.footer import Footer
from tui.widgets.shell_lines import ShellLines

NOTES = {
    "Project table": (
        "A `⇡` after a name means the experiment was pushed with `dvc exp push`. Values that"
        " changed in the last few seconds are **orange** (bold reverse with `NO_COLOR`); the"
        " cursor has a colour of its own."
    ),
    "Compare": (
        "Params that differ are *italic bold* and marked `≠`; the best value of each metric is"
        " underlined and marked `★` (lowest for losses and errors, highest otherwise)."
    ),
    "Members": (
        "Only the project's owner invites and removes (their keys show only to them); any"
        " other member may leave. Someone invited joins, and their runs show, only once they"
        " accept."
    ),
    "Projects": (
        "Invitations to other people's projects appear below your projects, live; nothing of"
        " yours is shared with a project until you accept."
    ),
}


def _sections() -> list[tuple[str, list[list[BindingType]]]]:
    from textual.scroll_view import ScrollView

    from tui.app import LiveStudioApp
    from tui.screens.alerts import AlertsScreen
    from tui.screens.compare import CompareScreen
    from tui.screens.details import DetailsScreen
    from tui.screens.members import MembersScreen
    from tui.screens.plots import PlotsScreen
    from tui.screens.profile import ProfileScreen
    from tui.screens.project import ProjectScreen
    from tui.screens.projects import ProjectsScreen
    from tui.widgets.experiment_table import ExperimentTable

    return [
        (
            "Everywhere",
            [LiveStudioApp.BINDINGS, [Binding("ctrl+p", "", tooltip="command palette")]],
        ),
        ("Projects", [ProjectsScreen.BINDINGS]),
        ("Project table", [ExperimentTable.BINDINGS, ProjectScreen.BINDINGS, ScrollView.BINDINGS]),
        ("Details", [DetailsScreen.BINDINGS]),
        ("Plots", [PlotsScreen.BINDINGS]),
        ("Compare", [CompareScreen.BINDINGS]),
        ("Profile", [ProfileScreen.BINDINGS]),
        ("Alerts", [AlertsScreen.BINDINGS]),
        ("Members", [MembersScreen.BINDINGS]),
    ]


def key_table(app: App[object], bindings: list[list[BindingType]]) -> list[tuple[str, str]]:
    """(keys, what they do) rows: keys with the same action and text share a row."""
    rows: dict[str, list[str]] = {}
    taken: set[str] = set()
    for group in bindings:
        # A key bound in an earlier group (the focused widget, before its screen) is the
        # one that acts: the later binding of the same key is never reached.
        earlier = set(taken)
        for binding in Binding.make_bindings(group):
            # (Textual's own bindings say "Page Left": as the rest, "page left")
            text = binding.tooltip or binding.description.lower()
            if not text or binding.key in earlier:
                continue
            taken.add(binding.key)
            key = app.get_key_display(binding)
            keys = rows.setdefault(text, [])
            if key not in keys:
                keys.append(key)
    return [(" / ".join(f"`{k}`" for k in keys), text) for text, keys in rows.items()]


def demo_markdown(app: App[object]) -> str | None:
    """The demo's note above its shell lines (``ShellLines``, below it); None elsewhere."""
    settings = getattr(app, "settings", None)
    if settings is None or not settings.welcome_lines:
        return None
    return f"# Keys\n\n## This demo\n\n{settings.welcome} (`y` copies these lines whole.)"


def help_markdown(app: App[object]) -> str:
    """The help page's keys: one table per screen, then its notes."""
    parts = [] if demo_markdown(app) else ["# Keys"]
    for title, bindings in _sections():
        parts.append(f"## {title}\n\n| key | action |\n|---|---|")
        parts[-1] += "".join(f"\n| {keys} | {text} |" for keys, text in key_table(app, bindings))
        if title in NOTES:
            parts.append(NOTES[title])
    return "\n\n".join(parts) + "\n"


class HelpScreen(Screen[None]):
    """All keys of all screens."""

    BINDINGS = [
        Binding("q,escape,question_mark", "app.pop_screen", "Back"),
        Binding("y", "copy_demo", "Copy demo lines", tooltip="copy the demo's export lines"),
        Binding("j", "scroll(2)", "Down", show=False),
        Binding("k", "scroll(-2)", "Up", show=False),
        # The page's, whichever of its tables has focus (a table's home is its own top).
        Binding("home", "edge(0)", "Top", show=False, priority=True),
        Binding("end", "edge(1)", "Bottom", show=False, priority=True),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            demo = demo_markdown(self.app)
            if demo:
                # Folded to the page's width, not in a code block: that one does not wrap,
                # and folded for 60 columns, the token broke mid-word at every width.
                yield Markdown(demo)
                yield ShellLines(self._demo_lines(), id="demo-lines")
            yield Markdown(help_markdown(self.app))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "copy_demo" or bool(self._demo_lines())

    def _demo_lines(self) -> str:
        return studio(self).settings.welcome_lines

    def action_copy_demo(self) -> None:
        self.app.copy_to_clipboard(self._demo_lines())
        self.notify("Copied the demo's lines to the clipboard.")

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False, immediate=True)

    def action_edge(self, bottom: int) -> None:
        page = self.query_one(VerticalScroll)
        if bottom:
            page.scroll_end(animate=False)
        else:
            page.scroll_home(animate=False)

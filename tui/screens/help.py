"""Every key, by screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown

KEYS = """
# Keys

## Everywhere
| key | action |
|---|---|
| `?` | this help |
| `ctrl+p` | command palette (help, live filter, plots, compare, profile, filter, trend metric) |
| `q` / `esc` | back (quit on the projects list) |
| `ctrl+c` | quit |

## Projects
| key | action |
|---|---|
| `↑↓` / `j k` | move |
| `enter` | open the project |
| `tab` | move between the projects and the invitations |
| `a` | accept the invitation under the cursor (you join; your runs show there) |
| `d` | decline the invitation under the cursor |
| `t` | profile and tokens |
| `r` | refresh |

Someone's invitation to their project appears below your projects, live; nothing of
yours is shared with a project until you accept.

## Project table
| key | action |
|---|---|
| `↑↓` / `j k`, `←→` | move between rows and columns |
| `space` | select or unselect the experiment |
| `enter` | details (status, failure reason, params, metrics, images) |
| `/` | filter by name (`enter` keeps it, `esc` clears it) |
| `s` | sort by the current column (again: reverse) |
| `l` | Live: only running experiments, or all again (or click the Live counter) |
| `m` | choose the metric of the trend sparkline |
| `p` | plots of the current experiment, or of the selection |
| `c` | compare the selected experiments (two or more) |
| `t` | profile and tokens |
| `x` | delete the current experiment (asks first; its poster or the project's owner) |
| `f` | mark the current experiment Failed (asks first; its poster or the project's owner) |

A `⇡` after a name means the experiment was pushed with `dvc exp push`.
Values that changed in the last few seconds are **orange** (bold reverse with `NO_COLOR`).

## Plots
| key | action |
|---|---|
| `j k` | scroll |
| `r` | refetch |

## Compare
| key | action |
|---|---|
| `d` | only rows that differ, or all |
| `p` | overlaid plots of the compared experiments |

Params that differ are *italic bold* and marked `≠`; the best value of each metric is
underlined and marked `★` (lowest for losses and errors, highest otherwise).

## Profile
| key | action |
|---|---|
| `g` | generate or regenerate the profile token (asks first) |
| `d` | delete the profile token (asks first) |
| `x` | revoke the client token under the cursor (asks first) |
| `a` | approve a device login: type the code `dvc studio login` printed, then confirm |
| `w` | change password (optionally resetting every access token) |
| `r` | refresh |

In the new-token dialog, `y` copies the token (OSC 52, works over SSH).
"""


class HelpScreen(Screen[None]):
    """All keys of all screens."""

    BINDINGS = [
        Binding("q,escape,question_mark", "app.pop_screen", "Back"),
        Binding("j", "scroll(2)", "Down", show=False),
        Binding("k", "scroll(-2)", "Up", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(KEYS)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)

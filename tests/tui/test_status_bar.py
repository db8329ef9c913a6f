"""The top bar keeps the connection state and the Live counter in view at 80 columns."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tui.widgets.status_bar import StatusBar


class _Bar(App[None]):
    def compose(self) -> ComposeResult:
        yield StatusBar()


async def test_a_long_place_or_server_is_cut_and_the_state_stays() -> None:
    app = _Bar()
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(StatusBar)
        bar.server = "https://livestudio.research-cluster.example.org:8443"
        bar.place = "plots: " + ", ".join(f"run-{i:02d}-a-long-sweep-name" for i in range(5))
        bar.connected, bar.connection = True, "connected"
        bar.show_live, bar.running = True, 3
        await pilot.pause()
        shown = bar.render().plain
    assert shown.endswith("● connected   Live 3 ") and len(shown) <= 78
    assert "plots: run-00" in shown and "…" in shown


async def test_a_server_url_loses_its_scheme_before_its_host_is_cut() -> None:
    app = _Bar()
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(StatusBar)
        bar.server = "http://127.0.0.1:18700"
        bar.place = "plots: " + "r" * 22  # leaves the URL 21 of its 22 cells
        bar.connected, bar.connection = True, "connected"
        await pilot.pause()
        shown = bar.render().plain
    assert "127.0.0.1:18700" in shown and "tp://" not in shown  # it read "…tp://127…"

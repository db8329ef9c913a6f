"""Screens opened and closed again leave nothing alive behind them (the TUI runs for days)."""

from __future__ import annotations

import gc
import weakref
from typing import TypeVar

from textual.screen import Screen

from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, open_project, post, until
from tui.app import LiveStudioApp
from tui.screens.details import DetailsScreen
from tui.screens.plots import PlotsScreen
from tui.widgets.metric_chart import MetricChart

BODIES = fixture_bodies("dvclive_basic")
CYCLES = 4
T = TypeVar("T")


def alive(refs: weakref.WeakSet[T]) -> list[T]:
    """What is still alive of ``refs`` once cyclic garbage is collected."""
    gc.collect()
    return list(refs)


async def test_closed_plots_and_details_are_released(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    for body in BODIES[:3]:  # start, metrics, then the plot rows of three series
        await post(alice, {**body, "name": "alpha"})
    async with app.run_test(size=SIZE) as pilot:
        project = await open_project(pilot, app)
        charts: weakref.WeakSet[MetricChart] = weakref.WeakSet()
        screens: weakref.WeakSet[Screen[object]] = weakref.WeakSet()
        seen = 0  # charts drawn (the weak set forgets those already released)
        for _ in range(CYCLES):
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, PlotsScreen) and app.screen.charts)
            charts.update(app.screen.charts.values())
            screens.add(app.screen)
            seen += len(app.screen.charts)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is project)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailsScreen) and app.screen.detail)
            screens.add(app.screen)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is project)
        assert seen >= CYCLES
        # Every chart of a closed plots screen goes (textual-plotext's theme subscription
        # kept them all), and so does every closed screen (its footer's subscription to
        # the screen's key changes included).
        await until(pilot, lambda: not alive(charts))
        await until(pilot, lambda: not alive(screens))

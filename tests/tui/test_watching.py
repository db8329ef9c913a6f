"""Watching runs from the keyboard, against a real server: ``!``, alerts, ``b``, rates, plots."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import msgspec
import pytest
from rich.console import Console
from rich.text import Text
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from shared.watches import WatchCondition, WatchCreate, WatchInfo
from tests.conftest import User, fixture_bodies
from tests.tui.conftest import SIZE, details_text, open_project, post, until
from tui import theme
from tui.app import LiveStudioApp
from tui.plotting import DASHES, dashes
from tui.screens.alerts import AlertsScreen
from tui.screens.compare import CompareScreen
from tui.screens.details import DetailsScreen
from tui.screens.plots import PlotsScreen
from tui.screens.profile import ProfileScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.screens.watch_dialog import WatchDialog, WatchTarget, build_watch, form_of, target_of
from tui.state import DELTA
from tui.widgets.experiment_table import ExperimentTable
from tui.widgets.metric_chart import MetricChart

BODIES = fixture_bodies("dvclive_basic")


def metrics(name: str, step: int, loss: float) -> dict:
    """A DVCLive step post: the summary metric and the plot row, as DVCLive sends them."""
    return {
        **BODIES[1],
        "name": name,
        "step": step,
        "metrics": {"dvclive/metrics.json": {"data": {"loss": loss, "step": step}}},
        "plots": {"dvclive/plots/metrics/loss.tsv": {"data": [{"step": step, "loss": loss}]}},
    }


def captured_writes(app: LiveStudioApp) -> list[str]:
    """What the app writes to its terminal from now on (the bell, OSC notifications)."""
    written: list[str] = []
    original = app._driver.write  # type: ignore[union-attr]

    def capture(data: str) -> None:
        written.append(data)
        original(data)

    app._driver.write = capture  # type: ignore[union-attr,method-assign]
    return written


def cell(screen: ProjectScreen, experiment_id: int, column: str) -> str:
    value = screen.query_one(ExperimentTable).get_cell(str(experiment_id), column)
    return value.plain if isinstance(value, Text) else value


async def test_bang_sets_a_watch_and_its_alert_rings_and_lists(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    experiment = await post(alice, metrics("doomed", 0, 1.0))
    async with app.run_test(size=SIZE) as pilot:
        written = captured_writes(app)
        screen = await open_project(pilot, app)
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, WatchDialog))
        assert app.screen.query_one("#when").has_focus  # a status: nothing to type
        await pilot.click("#save")  # the default: its status becomes Failed
        await until(pilot, lambda: not isinstance(app.screen, WatchDialog))
        await until(pilot, lambda: alice.client.get("/api/watches").json())
        watches = alice.client.get("/api/watches").json()
        assert [(w["kind"], w["statuses"], w["experiment_id"]) for w in watches] == [
            ("status", ["failed"], experiment)
        ]
        await pilot.press("A")  # nothing fired yet: said as such, not "press ! to watch"
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        table = app.screen.query_one("#alerts", DataTable)
        await until(pilot, lambda: table.row_count == 1)
        assert "your 1 watch did not fire" in str(table.get_row_at(0)[2])
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await post(
            alice,
            {
                **BODIES[1],
                "name": "doomed",
                "type": "done",
                "errors": [{"cls": "OOM", "text": "out of memory"}],
            },
        )
        await until(pilot, lambda: any("\x1b]9;" in w for w in written))
        osc = next(w for w in written if "\x1b]9;" in w)
        assert osc.startswith("\a")  # the bell rings with it
        assert "doomed: failed at step 0" in osc and "\x1b]777;notify;livestudio;" in osc
        # notify() posts a message: the toast is listed once the app has handled it.
        await until(
            pilot,
            lambda: any("doomed: failed at step 0" in str(n.message) for n in app._notifications),
        )
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        assert not list(app._notifications)  # the list says it all: the toast went
        alerts = app.screen
        await until(pilot, lambda: alerts.alerts)
        assert alerts.alerts[0].title == "doomed: failed at step 0"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen))
        assert app.screen.experiment_id == experiment
        assert isinstance(screen, ProjectScreen)


def test_the_watch_form_reads_thresholds_and_says_what_is_wrong() -> None:
    target = WatchTarget(7, "run", 3, "proj", "val/loss", 0.5)
    watch = build_watch("threshold", "project", "val/loss <= 0.1", "", target)
    assert (watch.project_id, watch.metric, watch.op, watch.threshold) == (3, "val/loss", "<=", 0.1)
    assert watch.experiment_id is None and watch.webhook_url is None
    stalled = build_watch("stalled", "experiment", "", " https://hooks.slack.com/x ", target)
    assert (stalled.experiment_id, stalled.factor) == (7, 5.0)
    assert stalled.webhook_url == "https://hooks.slack.com/x"
    for when, text, problem in (
        ("threshold", "val/loss", "metric, comparison, value"),
        ("threshold", "loss < low", "'low' is not a number"),
        ("stalled", "often", "'often' is not a number"),
        ("threshold", "loss < 1e999", "not a finite number"),  # JSON would have sent null
        ("stalled", "1", "between 1.5 and 1000"),
    ):
        try:
            build_watch(when, "experiment", text, "", target)
        except ValueError as exc:
            assert problem in str(exc)
        else:
            raise AssertionError(f"{text!r} was accepted")
    for webhook in ("http://[::1", "ftp://example.com/hook", "https://u:p@example.com/x"):
        try:
            build_watch("failed", "experiment", "", webhook, target)
        except ValueError as exc:
            assert "webhook URL" in str(exc)
        else:
            raise AssertionError(f"{webhook!r} was accepted")


async def pin_baseline(
    pilot: Pilot[None], app: LiveStudioApp, base: int
) -> tuple[ProjectScreen, ExperimentTable]:
    """Open the project (of two runs) and pin ``base`` as its baseline with ``b``."""
    screen = await open_project(pilot, app)
    table = screen.query_one(ExperimentTable)
    await until(pilot, lambda: len(screen.state.rows) == 2)
    table.move_cursor(row=table.shown_keys().index(str(base)))
    await pilot.press("b")
    await until(pilot, lambda: screen.state.baseline_id == base)
    return screen, table


def _with_extra(body: dict, metric: str, value: float) -> dict:
    """``body`` with one more metric in its plots (a metric another run does not log)."""
    step = body["step"]
    plots = {
        **body["plots"],
        f"dvclive/plots/metrics/{metric}.tsv": {"data": [{"step": step, metric: value}]},
    }
    return {**body, "plots": plots}


async def test_plots_of_a_run_leave_out_what_only_the_baseline_logs_until_the_run_does(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """A pinned baseline that logs more (lr, grad_norm) opened a run's plots with charts
    the run does not have, and they came first when their names sorted first."""
    app = logged_in_app
    base = 0
    for step in range(3):
        base = await post(alice, _with_extra(metrics("base", step, 1.0 - step / 10), "aa_lr", 0.1))
    run = await post(alice, metrics("run", 0, 0.9))
    async with app.run_test(size=SIZE) as pilot:
        _, table = await pin_baseline(pilot, app, base)
        table.move_cursor(row=table.shown_keys().index(str(run)))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots = app.screen
        await until(pilot, lambda: "loss" in plots.charts and base in plots.charts["loss"].data)
        assert set(plots.charts) == {"loss"}  # the baseline's aa_lr: not a chart of its own
        await post(alice, _with_extra(metrics("base", 3, 0.6), "aa_lr", 0.05))  # live, kept
        await pilot.pause(0.3)
        assert set(plots.charts) == {"loss"}
        await post(alice, _with_extra(metrics("run", 1, 0.8), "aa_lr", 0.2))
        await until(pilot, lambda: "aa_lr" in plots.charts)
        chart = plots.charts["aa_lr"]
        # The baseline's line comes with it: what it logged before and since the plots opened.
        await until(pilot, lambda: run in chart.drawn and base in chart.drawn)
        assert chart.data[base] == [(0, 0.1), (1, 0.1), (2, 0.1), (3, 0.05)]
        assert list(plots.query_one(VerticalScroll).children) == [
            plots.query_one("#charts-more"),  # (the count of series not charted: hidden)
            plots.charts["aa_lr"].parent,
            plots.charts["loss"].parent,
            plots.query_one("#images"),
            plots.query_one("#images-more"),
        ]
        # The run deleted (elsewhere): no chart stays with the baseline's line alone.
        gone = await asyncio.to_thread(alice.client.delete, f"/api/experiments/{run}")
        assert gone.status_code == 204
        await until(pilot, lambda: not plots.charts)
        assert set(plots.baseline_only) == {"aa_lr", "loss"}


async def test_a_baseline_pinned_in_another_terminal_is_followed(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """The TUI read the baseline once, when the project opened: pinned elsewhere, Δ base
    went on comparing with the old one."""
    app = logged_in_app
    base = await post(alice, metrics("base", 0, 1.0))
    other = await post(alice, metrics("other", 0, 0.5))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await until(pilot, lambda: other in screen.state.rows)
        assert screen.state.baseline_id is None
        pin = f"/api/projects/{screen.project.id}/baseline"
        pinned = await asyncio.to_thread(alice.client.put, pin, json={"experiment_id": base})
        assert pinned.status_code == 200  # (alice's other session: not this TUI's)
        await until(pilot, lambda: screen.state.baseline_id == base)
        await until(pilot, lambda: cell(screen, other, DELTA) == "-0.5")
        await asyncio.to_thread(alice.client.delete, pin)
        await until(pilot, lambda: screen.state.baseline_id is None)


async def test_baseline_deltas_at_equal_steps_with_runs_logging_at_different_rates(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    # The baseline logs every other step; the other run every step.
    base = 0
    for step in (0, 2, 4, 6):
        base = await post(alice, metrics("base", step, 1.0 - step / 10))
    fast = 0
    for step in range(4):
        fast = await post(alice, metrics("fast", step, 0.8 - step / 10))
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await pin_baseline(pilot, app, base)
        await until(pilot, lambda: bool(cell(screen, fast, DELTA)))
        assert alice.client.get("/api/projects").json()  # sanity: still logged in
        # fast at step 3 (loss 0.5) against base at step 2 (its latest by then: 0.8)
        assert cell(screen, fast, DELTA) == "-0.3"
        assert cell(screen, base, DELTA) == "baseline"
        shown = table.get_cell(str(fast), DELTA)
        assert isinstance(shown, Text) and shown.style == theme.BETTER  # a loss: lower is better
        await pilot.press("M")  # higher is better now
        await until(pilot, lambda: table.get_cell(str(fast), DELTA).style == theme.WORSE)
        # A new step of the run is compared with the baseline at that same step.
        await post(alice, metrics("fast", 4, 0.1))
        await until(pilot, lambda: cell(screen, fast, DELTA) == "-0.5")  # 0.1 - 0.6
        # A run gone NaN: its Δ base says so, as worse (it was blank beside its "nan").
        summary = {"dvclive/metrics.json": {"data": {"loss": "nan", "step": 5}}}
        await post(alice, {**metrics("fast", 5, 0.0), "metrics": summary})
        await until(pilot, lambda: cell(screen, fast, DELTA) == "nan")
        assert table.get_cell(str(fast), DELTA).style == theme.WORSE
        await post(alice, metrics("fast", 6, 0.1))
        await until(pilot, lambda: cell(screen, fast, DELTA) not in ("nan", ""))
        # Kept on the server, per user and project.
        project_id = screen.project.id
        kept = alice.client.get(f"/api/projects/{project_id}/baseline").json()
        assert kept == {"experiment_id": base}
        # Compare marks the baseline's column; plots draw it dashed beside the others.
        screen.state.selection.update({base, fast})
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        labels = [str(c.label) for c in app.screen.query_one("#compare").columns.values()]
        assert "◆ base (baseline)" in labels
        # M made higher losses better here too: base's 0.4 gets the star, not fast's 0.1.
        loss = next(line for line in app.screen.lines if line.key == "metric:loss")
        assert loss.best == {app.screen.ids.index(base)}
        await pilot.press("escape")
        screen.state.selection.clear()
        table.move_cursor(row=table.shown_keys().index(str(fast)))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots = app.screen
        await until(pilot, lambda: "loss" in plots.charts and base in plots.charts["loss"].drawn)
        assert set(plots.charts["loss"].names) == {base, fast}
        await pilot.press("escape")
        # b on the baseline unpins it; the column goes away.
        table.move_cursor(row=table.shown_keys().index(str(base)))
        await pilot.press("b")
        await until(pilot, lambda: screen.state.baseline_id is None)
        assert DELTA not in screen.state.columns
    assert alice.client.get(f"/api/projects/{project_id}/baseline").json() == {
        "experiment_id": None
    }


def test_dashes_cut_any_line_into_the_same_number_of_dashes() -> None:
    for xs in ([0.0, 10.0], [float(x) for x in range(1000)]):
        ys = [2 * x for x in xs]
        parts = dashes(xs, ys)
        assert len(parts) == DASHES
        for dash_x, dash_y in parts:
            assert dash_y == pytest.approx([2 * x for x in dash_x])  # on the line
        gaps = [parts[i + 1][0][0] - parts[i][0][-1] for i in range(DASHES - 1)]
        assert min(gaps) > 0  # with gaps between


async def test_plots_switch_to_wall_time_with_x(logged_in_app: LiveStudioApp, alice: User) -> None:
    app = logged_in_app
    for step in range(3):
        await post(alice, metrics("timed", step, 1.0 / (step + 1)))
        await asyncio.sleep(0.3)
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots = app.screen
        await until(pilot, lambda: "loss" in plots.charts and plots.charts["loss"].drawn)
        chart: MetricChart = plots.charts["loss"]
        times = next(iter(chart.times.values()))
        assert sorted(times) == [0, 1, 2]
        assert 0.5 < times[2] - times[0] < 5  # when each step arrived, from the server
        await pilot.press("x")
        assert plots.view.wall_time
        await pilot.pause()
        x_of = chart._x(next(iter(chart.data)), [0, 1, 2], [1.0, 0.5, 0.33], min(times.values()))
        assert x_of[0][0] == 0.0 and 0.5 < x_of[0][2] < 5
        await pilot.press("left")  # no step line on a time axis: said, not moved unseen
        assert plots.view.cursor is None
        await until(
            pilot, lambda: any("for the step axis" in str(n.message) for n in app._notifications)
        )
        await pilot.press("x")
        assert not plots.view.wall_time


async def test_steps_per_second_and_the_stalled_badge(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    experiment = 0
    for step in range(6):
        experiment = await post(alice, metrics("quick", step, 1.0))
        await asyncio.sleep(0.25)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        row = screen.state.rows[experiment]
        # ~4 steps a second; a slow post on a loaded machine lowers it honestly.
        assert row.steps_per_s is not None and 1 < row.steps_per_s < 6
        assert float(cell(screen, experiment, "rate")) == pytest.approx(row.steps_per_s, rel=0.1)
        # Silent for several times its interval (and at least 3 s): stalled, not Stopped.
        await until(pilot, lambda: cell(screen, experiment, "status") == "◌ stalled", timeout=8)
        assert screen.state.rows[experiment].status == "running"
        assert cell(screen, experiment, "rate") == ""  # the old rate is not its rate now
        # Its details say the same (they said "● running" and the old steps/s).
        body = await details_text(pilot, app)
        assert "◌ stalled  (running, but silent for" in body and "steps/s" not in body
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await post(alice, metrics("quick", 6, 1.0))
        await until(pilot, lambda: "running" in cell(screen, experiment, "status"))
        await until(pilot, lambda: cell(screen, experiment, "rate") != "")  # stepping again
        # Once the run ends its rate means nothing: the cell empties with the status change.
        await post(alice, {**metrics("quick", 6, 1.0), "type": "done"})
        await until(pilot, lambda: "completed" in cell(screen, experiment, "status"))
        assert cell(screen, experiment, "rate") == ""


async def test_names_that_look_like_markup_are_shown_as_they_are(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    name = "run[/b][@click=app.quit]x"
    await post(alice, metrics(name, 0, 1.0))
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    made = alice.client.post("/api/watches", json={"kind": "nonfinite", "project_id": project_id})
    assert made.status_code == 201
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, WatchDialog))
        await pilot.press("escape")
        body = metrics(name, 1, 1.0)
        body["metrics"] = {"dvclive/metrics.json": {"data": {"loss[/i]": "nan", "step": 1}}}
        await post(alice, body)
        await until(pilot, lambda: any(name in str(n.message) for n in app._notifications))
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen) and app.screen.alerts)
        assert app.screen.alerts[0].title == f"{name}: loss[/i] is nan at step 1"
        await pilot.press("escape", "t")
        await pilot.pause(0.5)
        assert app.is_running and screen.state.rows


def test_the_form_starts_from_any_watch_it_changes() -> None:
    experiment = WatchInfo(
        id=1, target="run", created_at=datetime.now(UTC), experiment_id=7, kind="stalled"
    )
    project = WatchInfo(
        id=2, target="proj", created_at=datetime.now(UTC), project_id=3, kind="status"
    )
    for watch, target in ((experiment, target_of(experiment)), (project, target_of(project))):
        for condition in (
            WatchCondition(kind="status", statuses=["failed"]),
            WatchCondition(kind="status", statuses=["failed", "stopped"]),
            WatchCondition(kind="status", statuses=["completed"]),
            WatchCondition(kind="nonfinite"),
            WatchCondition(kind="nonfinite", metric="grad"),
            WatchCondition(kind="threshold", metric="val/loss", op=">=", threshold=0.25),
            WatchCondition(kind="stalled", factor=7.5),
            # Kept exactly, and sets of statuses only the API makes (found in review).
            WatchCondition(kind="status", statuses=["completed", "failed"]),
            WatchCondition(kind="status", statuses=["stopped"]),
            WatchCondition(kind="threshold", metric="acc", op=">", threshold=0.1234567),
            WatchCondition(kind="threshold", metric="n", op="<", threshold=1234567.0),
            WatchCondition(kind="threshold", metric="lr", op="<", threshold=1e-05),
            WatchCondition(kind="stalled", factor=2.123456789),
        ):
            scope = "experiment" if watch.experiment_id else "project"
            when, text = form_of(condition)
            rebuilt = build_watch(when, scope, text, "", target)
            assert msgspec.structs.replace(rebuilt, experiment_id=None, project_id=None) == (
                WatchCreate(**msgspec.structs.asdict(condition))
            )
            assert (rebuilt.experiment_id, rebuilt.project_id) == (
                watch.experiment_id,
                watch.project_id,
            )


async def test_a_watch_is_changed_in_place_from_the_profile(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    await post(alice, metrics("steady", 0, 1.0))
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    made = alice.client.post(
        "/api/watches",
        json={
            "kind": "threshold",
            "project_id": project_id,
            "metric": "loss",
            "op": "<",
            "threshold": 0.3,
        },
    ).json()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.watches)
        await pilot.press("e")  # first it moves to the watches
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, WatchDialog))
        form = app.screen
        assert form.query_one("#condition", Input).value == "loss < 0.3"
        form.query_one("#condition", Input).value = "loss <= 0.1"
        form.query_one("#webhook", Input).value = "https://hooks.slack.com/services/T/B/x"
        await pilot.click("#save")
        await until(pilot, lambda: isinstance(app.screen, ProfileScreen))
        await until(
            pilot,
            lambda: alice.client.get("/api/watches").json()[0]["threshold"] == 0.1,
        )
        (changed,) = alice.client.get("/api/watches").json()
        assert changed["id"] == made["id"]  # in place, not a new watch
        assert (changed["op"], changed["project_id"]) == ("<=", project_id)
        assert changed["webhook_url"] == "https://hooks.slack.com/services/T/B/x"
        profile = app.screen
        await until(
            pilot,
            lambda: [w.describe() for w in profile.watches] == ["loss <= 0.1"],  # type: ignore[attr-defined]
        )


async def test_a_metric_watch_suggests_better_than_now_exactly_and_does_not_fire_at_once(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    body = {
        **BODIES[1],
        "name": "tuned",
        "metrics": {"dvclive/metrics.json": {"data": {"acc": 0.976574, "loss": 0.0412345}}},
    }
    await post(alice, body)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = screen.query_one(ExperimentTable)
        suggested = {}
        for metric in ("acc", "loss"):
            table.move_cursor(column=table._columns.index(f"m:{metric}"))
            await pilot.press("exclamation_mark")
            await until(pilot, lambda: isinstance(app.screen, WatchDialog))
            suggested[metric] = app.screen.query_one("#condition", Input).value
            # The threshold is what is left to type (the "when" selector ignored typing).
            assert app.screen.query_one("#condition", Input).has_focus
            if metric == "loss":  # the text of one kind is not carried into another
                box, kind = app.screen.query_one("#condition", Input), app.screen.query_one("#when")
                kind.value = "stalled"
                await until(pilot, lambda box=box: box.value == "")
                kind.value = "nonfinite"
                await until(pilot, lambda box=box: box.value == "loss")
                kind.value = "threshold"
                await until(pilot, lambda box=box: box.value == "loss < 0.0412345")
            if metric == "acc":
                await pilot.click("#save")
            else:
                await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, WatchDialog))
        # Higher accuracy and lower loss are better; the value is the exact one (the table
        # shows 0.9766, already past it: that watch fired the moment it was made).
        assert suggested == {"acc": "acc > 0.976574", "loss": "loss < 0.0412345"}
        await until(pilot, lambda: alice.client.get("/api/watches").json())
        await asyncio.sleep(1)  # an alert, had the watch fired, is written with the watch
        assert alice.client.get("/api/alerts").json() == []


async def test_an_alert_waits_for_an_open_dialog_to_close_but_rings_at_once(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    from tui.screens.dialogs import ConfirmDialog

    app = logged_in_app
    experiment = await post(alice, metrics("doomed", 0, 1.0))
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    made = alice.client.post(
        "/api/watches", json={"kind": "status", "project_id": project_id, "statuses": ["failed"]}
    )
    assert made.status_code == 201, made.text
    async with app.run_test(size=SIZE) as pilot:
        written = captured_writes(app)
        screen = await open_project(pilot, app)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        failed = {**BODIES[1], "name": "doomed", "type": "done", "errors": [{"cls": "E"}]}
        await post(alice, failed)
        await until(pilot, lambda: any("\x1b]9;" in w for w in written))  # the bell: at once
        await pilot.pause(0.3)
        toasts = [str(n.message) for n in app._notifications]
        assert not any("doomed: failed" in t for t in toasts), toasts  # not over the dialog
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        await until(
            pilot, lambda: any("doomed: failed" in str(n.message) for n in app._notifications)
        )
        assert experiment in screen.state.rows  # "n": nothing was deleted


async def test_a_run_is_not_called_stalled_while_the_stream_is_away(
    logged_in_app: LiveStudioApp, server, alice: User
) -> None:
    from shared.watches import MIN_STALL_SECONDS
    from tui.widgets.status_bar import StatusBar

    app = logged_in_app
    experiment = 0
    for step in range(6):
        experiment = await post(alice, metrics("busy", step, 1.0))
        await asyncio.sleep(0.1)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        assert "running" in cell(screen, experiment, "status")
        table = screen.query_one(ExperimentTable)
        table.move_cursor(row=table.shown_keys().index(str(experiment)))
        assert "● running" in await details_text(pilot, app)
        details = app.screen
        assert isinstance(details, DetailsScreen)

        def details_say() -> str:
            details.render_detail()
            console = Console(width=120, record=True, file=io.StringIO())
            console.print(details.query_one("#body", Static).content)
            return console.export_text()

        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: not screen.query_one(StatusBar).connected)
        # The job may well be posting on: with no news, the run is judged as of the drop.
        await pilot.pause(MIN_STALL_SECONDS + 1.5)
        assert "running" in cell(screen, experiment, "status")
        assert cell(screen, experiment, "rate") != ""
        assert "● running" in details_say() and "stalled" not in details_say()
        # Back, and the run was silent indeed: now it is stalled.
        await asyncio.to_thread(server.start)
        await until(pilot, lambda: cell(screen, experiment, "status") == "◌ stalled")
        await until(pilot, lambda: "◌ stalled" in details_say())


async def test_a_watch_on_a_metric_nobody_logs_asks_once_and_suggests_the_close_one(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    from textual.widgets import Label

    app = logged_in_app
    await post(alice, metrics("typo", 0, 1.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = screen.query_one(ExperimentTable)
        table.move_cursor(column=table._columns.index("m:loss"))
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, WatchDialog))
        dialog = app.screen
        dialog.query_one("#condition", Input).value = "lsos < 0.1"
        await pilot.click("#save")
        problem = dialog.query_one("#problem", Label)
        await until(pilot, lambda: "Did you mean loss?" in str(problem.content))
        assert isinstance(app.screen, WatchDialog)  # not saved yet
        assert alice.client.get("/api/watches").json() == []
        # The condition is where the keys go now, to correct it (they went to the button).
        assert dialog.query_one("#condition", Input).has_focus
        # The question is about the text as it was: changing it takes the question away.
        dialog.query_one("#condition", Input).value = "loss < 0.1"
        await until(pilot, lambda: str(problem.content) == "")
        dialog.query_one("#condition", Input).value = "lsos < 0.1"  # the typo again:
        await pilot.pause(0.3)  # (a button ignores a click while it still shows the last)
        await pilot.click("#save")  # asked about again
        await until(pilot, lambda: "Did you mean loss?" in str(problem.content))
        await pilot.pause(0.3)
        await pilot.click("#save")  # again: the user means it (a metric logged later)
        await until(pilot, lambda: not isinstance(app.screen, WatchDialog))
        await until(pilot, lambda: alice.client.get("/api/watches").json())
        assert alice.client.get("/api/watches").json()[0]["metric"] == "lsos"

        # Refused by the server (a webhook it will not call): said in the form, which
        # keeps everything typed.
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, WatchDialog))
        dialog = app.screen
        dialog.query_one("#condition", Input).value = "loss < 0.1"
        dialog.query_one("#webhook", Input).value = "http://localhost:9/hook"
        await pilot.click("#save")
        problem = dialog.query_one("#problem", Label)
        await until(pilot, lambda: "not a public address" in str(problem.content))
        assert app.screen is dialog and len(alice.client.get("/api/watches").json()) == 1
        assert dialog.query_one("#condition", Input).value == "loss < 0.1"


async def test_alerts_and_the_profile_say_again_how_long_ago(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch
) -> None:
    import time

    from tui import clock
    from tui.screens import alerts as alerts_module
    from tui.screens import profile as profile_module
    from tui.screens.profile import ProfileScreen

    monkeypatch.setattr(alerts_module, "AGO_EVERY", 0.2)
    monkeypatch.setattr(profile_module, "AGO_EVERY", 0.2)
    later = [0.0]
    monkeypatch.setattr(clock, "now", lambda: time.time() + later[0])
    app = logged_in_app
    await post(alice, metrics("told", 0, 1.0))
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    made = alice.client.post("/api/watches", json={"kind": "nonfinite", "project_id": project_id})
    assert made.status_code == 201
    body = metrics("told", 1, 1.0)
    body["metrics"] = {"dvclive/metrics.json": {"data": {"loss": "nan", "step": 1}}}
    await post(alice, body)
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen) and app.screen.alerts)
        table = app.screen.query_one("#alerts", DataTable)

        def when() -> str:
            return str(table.get_row_at(0)[0])

        assert "m ago" not in when()
        later[0] = 180.0  # three minutes pass with the screen open, no new alert
        await until(pilot, lambda: when() == "3m ago")
        # Shown whole (the table widens the column at its next refresh, not at once).
        await until(pilot, lambda: table.columns["when"].content_width >= len("3m ago"))
        await pilot.press("escape", "t")
        await until(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.info)
        tokens = app.screen.query_one("#tokens", DataTable)
        later[0] = 600.0
        await until(pilot, lambda: "10m ago" in " ".join(map(str, tokens.get_row_at(0))))
        # Told again in place: a table scrolled sideways (narrow terminal) stays there.
        await pilot.resize_terminal(40, 24)
        await pilot.pause()
        tokens.scroll_to(x=12, animate=False, immediate=True)
        await pilot.pause()
        assert tokens.scroll_x == 12
        later[0] = 1200.0
        await until(pilot, lambda: "20m ago" in " ".join(map(str, tokens.get_row_at(0))))
        await pilot.pause(0.3)
        assert tokens.scroll_x == 12


async def test_an_empty_project_can_be_watched_before_its_first_run(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    from tui.screens.projects import ProjectsScreen

    made = alice.client.post(
        "/api/projects", json={"name": "fresh", "repo_url": "git@github.com:acme/fresh.git"}
    )
    assert made.status_code == 201
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await until(pilot, lambda: app.screen.query_one("#projects").row_count > 0)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
        await pilot.pause(0.3)
        await pilot.press("exclamation_mark")
        await until(pilot, lambda: isinstance(app.screen, WatchDialog))
        await pilot.click("#save")  # the default: any experiment of the project fails
        await until(pilot, lambda: alice.client.get("/api/watches").json())
    (watch,) = alice.client.get("/api/watches").json()
    assert watch["project_id"] == made.json()["id"] and watch["experiment_id"] is None


async def test_many_alerts_leave_the_delivery_log_and_the_webhook_column_in_view(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """With ~20 alerts at 80x24 the list filled the screen and the delivery log of the
    one under the cursor was nowhere; a stall's long title pushed the webhook column off."""
    from textual.widgets import Static

    await post(alice, metrics("first", 0, 1.0))
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    made = alice.client.post("/api/watches", json={"kind": "nonfinite", "project_id": project_id})
    assert made.status_code == 201
    for index in range(25):
        body = metrics(f"run-with-a-rather-long-name-{index:02d}", 1, 1.0)
        body["metrics"] = {"dvclive/metrics.json": {"data": {"loss": "nan", "step": 1}}}
        await post(alice, body)
    await asyncio.sleep(1)  # (the evaluator fires them one by one)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        await pilot.press("A")
        await until(
            pilot, lambda: isinstance(app.screen, AlertsScreen) and len(app.screen.alerts) >= 20
        )
        await pilot.pause()
        log = app.screen.query_one("#delivery-log", Static)
        assert log.region.height >= 3 and log.region.bottom < SIZE[1]
        assert "posts to no webhook" in str(log.render())
        table = app.screen.query_one("#alerts", DataTable)
        assert list(table.columns)[:2] == ["when", "webhook"]


async def test_an_experiment_out_of_reach_is_not_said_to_wait_for_the_server(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """Opened from an alert once its run had left the user's projects, the details said
    it would load "once the server is back": the server was there, the 404 for good."""
    from textual.widgets import Static

    from tui.screens.details import DetailsScreen

    await post(alice, metrics("mine", 0, 1.0))
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        app.push_screen(DetailsScreen(987654, f"/api/projects/{project_id}/events"))
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen))
        await pilot.pause()
        body = app.screen.query_one("#body", Static)
        await until(pilot, lambda: "Could not load" in str(body.render()))
        said = " ".join(str(body.render()).split())
        assert "q goes back" in said and "server is back" not in said

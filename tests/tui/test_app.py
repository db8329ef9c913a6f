"""The TUI against a real server: login, live table, highlights, filters, screens."""

from __future__ import annotations

import asyncio
import stat

from rich.text import Text

from tests.conftest import Server, User, fixture_bodies
from tests.tui.conftest import (
    PASSWORD,
    SIZE,
    compare_runs,
    on_screen,
    open_project,
    post,
    select_runs,
    until,
)
from tui import theme
from tui.app import LiveStudioApp, build_app
from tui.screens.compare import LABEL_ROOM_MIN, CompareScreen
from tui.screens.login import LoginScreen
from tui.screens.plots import PlotsScreen
from tui.screens.project import ProjectScreen
from tui.screens.projects import ProjectsScreen
from tui.settings import TuiSettings
from tui.widgets.experiment_table import ExperimentTable
from tui.widgets.metric_chart import MetricChart, MetricPanel
from tui.widgets.status_bar import StatusBar

BODIES = fixture_bodies("dvclive_basic")


def run(name: str, step: int, loss: float, **extra: object) -> dict:
    """A DVCLive metrics post for experiment ``name``."""
    return {
        **BODIES[1],
        "name": name,
        "step": step,
        "metrics": {"dvclive/metrics.json": {"data": {"loss": loss, "step": step}}},
        **extra,
    }


async def test_login_screen_stores_session_with_mode_0600(
    tui_settings: TuiSettings, server: Server, alice: User
) -> None:
    app = build_app(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, LoginScreen)
        await pilot.click("#username")
        await pilot.press(*"alice")
        await pilot.click("#password")
        await pilot.press(*"wrong-password", "enter")
        await until(pilot, lambda: "Wrong username" in str(app.screen.query_one("#error").render()))
        await pilot.click("#password")
        await pilot.press(*PASSWORD, "enter")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
    session = tui_settings.load_session()
    assert session is not None and session.username == "alice"
    assert stat.S_IMODE(tui_settings.session_file.stat().st_mode) == 0o600


async def test_a_login_that_cannot_be_kept_still_opens_and_says_why(
    tui_settings: TuiSettings, server: Server, alice: User, tmp_path
) -> None:
    """The save's error was swallowed by the login worker: "Logging in…" for ever."""
    (tmp_path / "a-file").write_text("")
    tui_settings.session_file = tmp_path / "a-file" / "cfg" / "session.json"
    app = build_app(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#username")
        await pilot.press(*"alice")
        await pilot.click("#password")
        await pilot.press(*PASSWORD, "enter")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        told = [str(n.message) for n in app._notifications]
        assert any("Cannot keep the login in" in m and "until you quit" in m for m in told)


async def test_keys_typed_ahead_at_login_land_in_their_fields(
    tui_settings: TuiSettings, server: Server, alice: User
) -> None:
    """A burst (a password manager's auto-type): every key queued before any is handled."""
    from textual import events

    app = build_app(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, LoginScreen)
        await pilot.pause()
        burst = [*"alice", "tab", *PASSWORD, "enter"]
        for key in burst:
            char = key if len(key) == 1 else ("\t" if key == "tab" else "\r")
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
    session = tui_settings.load_session()
    assert session is not None and session.username == "alice"


async def test_live_table_highlights_counts_and_filters(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    first = await post(alice, run("alpha", 0, 1.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = screen.query_one(ExperimentTable)
        bar = screen.query_one(StatusBar)
        second = await post(alice, run("beta", 0, 2.0))
        await until(pilot, lambda: second in screen.state.rows and table.row_count == 3)
        table.move_cursor(row=table.shown_keys().index(str(first)))
        cursor_key = table.current_key()

        await post(alice, run("alpha", 1, 0.5))
        await until(pilot, lambda: screen.state.rows[first].metrics["loss"] == 0.5)
        cell = table.get_cell(str(first), "m:loss")
        assert isinstance(cell, Text) and cell.plain == "0.5"
        assert cell.style == theme.highlight()  # orange while fresh
        assert table.current_key() == cursor_key  # the update did not move the cursor
        untouched = table.get_cell(str(second), "m:loss")
        assert not isinstance(untouched, Text) or untouched.style != theme.highlight()
        await until(
            pilot, lambda: not isinstance(table.get_cell(str(first), "m:loss"), Text), timeout=5
        )
        assert table.get_cell(str(first), "m:loss") == "0.5"  # faded back

        assert bar.running == 2
        await post(alice, {**BODIES[-1], "name": "beta"})  # beta is done
        await until(pilot, lambda: bar.running == 1)
        await pilot.press("l")
        await until(pilot, lambda: str(second) not in table.shown_keys())
        assert str(first) in table.shown_keys() and bar.live_only
        await pilot.press("l")
        await until(pilot, lambda: str(second) in table.shown_keys())

        table.move_cursor(column=table._columns.index("m:loss"))
        await pilot.press("s")
        assert screen.state.sort_column == "m:loss" and not screen.state.sort_reverse
        group_rows = [k for k in table.shown_keys() if not k.startswith("g:")]
        assert group_rows == sorted(
            group_rows, key=lambda k: screen.state.rows[int(k)].metrics["loss"]
        )
        await pilot.press("s")
        assert screen.state.sort_reverse
        # Sorted by loss, descending: a run whose loss passes the other's moves, by itself.
        order = [k for k in table.shown_keys() if not k.startswith("g:")]
        low = int(order[-1])
        await post(alice, run(screen.state.rows[low].name, 5, 9.0))
        await until(
            pilot, lambda: next(k for k in table.shown_keys() if not k.startswith("g:")) == str(low)
        )

        step_x = sum(table._widths[c] + 2 for c in table._columns[: table._columns.index("step")])
        await pilot.click(ExperimentTable, offset=(step_x + 1, 0))  # the "step" header
        assert screen.state.sort_column == "step"
        header = header_text(table)
        assert "step ▲" in header  # the column widened for its arrow (it was cut off)
        assert "trend loss" in header  # the trend column names its metric

        await pilot.press("slash", *"bet", "enter")
        await until(pilot, lambda: str(first) not in table.shown_keys())
        assert str(second) in table.shown_keys()
        assert "experiment /bet" in header_text(table)  # hidden rows: the header says why


def header_text(table: ExperimentTable) -> str:
    """The table's header line as the terminal shows it (scrolled to the left)."""
    return table.render_line(0).text


async def test_a_new_run_above_the_cursor_does_not_move_it_to_another_run(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    first = await post(alice, run("alpha", 0, 1.0))
    async with logged_in_app.run_test(size=SIZE) as pilot:
        table = (await open_project(pilot, logged_in_app)).table
        assert table.current_key() == str(first)  # untouched: on the first experiment
        second = await post(alice, run("beta", 0, 2.0))  # newer: shown above alpha
        await until(pilot, lambda: str(second) in table.shown_keys())
        order = table.shown_keys()
        assert order.index(str(second)) < order.index(str(first))
        assert table.current_key() == str(first)  # still on alpha, now one row lower
        other_sha = {**run("gamma", 0, 3.0), "baseline_sha": "e" * 40}
        third = await post(alice, other_sha)  # a new commit's group, above alpha's
        await until(pilot, lambda: str(third) in table.shown_keys())
        assert table.current_key() == str(first)


async def test_in_a_project_opened_empty_the_cursor_stays_on_the_first_run_to_arrive(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    made = alice.client.post(
        "/api/projects", json={"name": "mnist", "repo_url": BODIES[1]["repo_url"]}
    )
    assert made.status_code == 201, made.text
    async with logged_in_app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(logged_in_app.screen, ProjectsScreen))
        await until(pilot, lambda: logged_in_app.screen.query_one("#projects").row_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(logged_in_app.screen, ProjectScreen))
        table = logged_in_app.screen.table
        first = await post(alice, run("alpha", 0, 1.0))
        await until(pilot, lambda: table.current_key() == str(first))
        second = await post(alice, run("beta", 0, 2.0))
        await until(pilot, lambda: str(second) in table.shown_keys())
        assert table.current_key() == str(first)


async def test_compare_and_plots_views(logged_in_app: LiveStudioApp, alice: User) -> None:
    app = logged_in_app
    a = await post(alice, run("alpha", 0, 1.0, params={"params.yaml": {"lr": 0.1, "batch": 8}}))
    b = await post(alice, run("beta", 0, 0.4, params={"params.yaml": {"lr": 0.2, "batch": 8}}))
    await post(alice, {**BODIES[2], "name": "alpha"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = await select_runs(pilot, screen, [a, b])
        assert screen.state.selection == {a, b}
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        # One event stream per project: the compare screen is fed by the project screen's.
        assert compare.source is screen and screen.followers == [compare]
        assert not [w for w in app.workers if w.group == "stream" and w.node is compare]
        lines = {line.key: line for line in compare.lines}
        assert lines["param:lr"].differs and not lines["param:batch"].differs
        assert lines["metric:loss"].best == {compare.ids.index(b)}  # beta has the lowest loss
        assert compare.table.get_cell("metric:loss", str(b)).plain == "★ 0.4"
        await pilot.press("d")
        await until(pilot, lambda: "param:batch" not in compare.table.rows)
        assert "param:lr" in compare.table.rows
        await post(alice, run("beta", 1, 0.3, params={"params.yaml": {"lr": 0.2, "batch": 8}}))
        await until(pilot, lambda: compare.table.get_cell("metric:loss", str(b)).plain == "★ 0.3")
        assert (
            compare.table.get_cell("metric:loss", str(b)).style.color is not None
            or theme.no_color()
        )
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
        await until(pilot, lambda: screen.followers == [])

        table.move_cursor(row=table.shown_keys().index(str(a)))
        await pilot.press("space", "space")  # unselect then select a again: plots of the selection
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots = app.screen
        assert plots.source is screen
        await until(pilot, lambda: "train/loss" in plots.charts)
        assert set(plots.charts) == {"train/acc", "train/loss", "val/loss"}
        assert all(isinstance(c, MetricChart) for c in plots.charts.values())
        await post(
            alice,
            {
                **BODIES[2],
                "name": "alpha",
                "step": 1,
                "plots": {
                    "dvclive/plots/metrics/train/loss.tsv": {"data": [{"step": 1, "loss": 0.25}]}
                },
            },
        )
        await until(pilot, lambda: (1, 0.25) in plots.charts["train/loss"].data.get(a, []))


async def test_compare_keeps_the_runs_in_view_beside_a_very_long_metric_name(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """The fixed label column was as wide as the longest name: with a 230-character
    metric, no run's column was on an 80-column screen at all."""
    long = "val/very_long_metric_name_" + "component_" * 20 + "end"
    metrics = {"dvclive/metrics.json": {"data": {"loss": 0.5, long: 1.5, "step": 0}}}
    a = await post(alice, run("alpha", 0, 1.0, metrics=metrics))
    b = await post(alice, run("beta", 0, 0.4))
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        compare = await compare_runs(pilot, app, [a, b])
        await until(pilot, lambda: f"metric:{long}" in compare.table.rows)
        await pilot.pause()
        label = compare.table.get_cell(f"metric:{long}", "name").plain
        assert len(label) <= SIZE[0] // 3 and "…" in label and label.endswith("nent_end")
        assert label.strip().startswith("metric val/very")  # both ends: where names differ
        shown = app.screen.query_one("#compare").render_line(0).text  # the header row
        assert "alpha" in shown and "beta" in shown
        # Wider, the names get more room.
        await pilot.resize_terminal(160, 24)
        await until(pilot, lambda: compare.label_room == 160 // 3)
        wider = compare.table.get_cell(f"metric:{long}", "name").plain
        assert len(label) < len(wider) <= 160 // 3


async def test_compare_scrolls_sideways_by_whole_runs(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """DataTable scrolls by cells: a run's column half under the fixed names read 0.03 as
    3. ← → now move a whole run at a time, up to the last one, also after a resize."""
    ids = []
    for index, lr in enumerate([0.0001, 0.03, 0.5, 0.7, 1.0]):
        body = run(f"run-number-{index}", 0, 1.0 / (index + 1), params={"p.yaml": {"lr": lr}})
        ids.append(await post(alice, body))
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        compare = await compare_runs(pilot, app, ids)
        table = compare.table
        await until(pilot, lambda: "param:lr" in table.rows)
        await pilot.pause()
        starts = table._column_starts()

        def in_view() -> list[str]:
            """The runs whose values of lr are drawn whole, in order."""
            line = table.render_line(1 + table.get_row_index("param:lr")).text
            return [v for v in line.split() if v.replace(".", "").isdigit()]

        lrs = in_view()
        assert lrs and set(lrs) <= {"0.0001", "0.03", "0.5", "0.7", "1"}
        seen: list[int] = []
        for _ in range(len(ids) + 2):
            await pilot.press("right")
            await pilot.pause()
            seen.append(round(table.scroll_x))
            assert round(table.scroll_x) in starts  # never inside a column
            assert all(v in {"0.0001", "0.03", "0.5", "0.7", "1"} for v in in_view())
        assert seen[-1] == starts[-1]  # the last run can be brought to the left edge
        first = in_view()[0]
        await pilot.resize_terminal(60, 15)
        await until(pilot, lambda: in_view()[:1] == [first])  # the same run at the edge
        assert round(table.scroll_x) in table._column_starts()
        for _ in range(len(ids) + 2):
            await pilot.press("left")
        await pilot.pause()
        assert table.scroll_x == 0 and in_view()[0] == lrs[0]


async def test_compare_keeps_its_names_on_screen_through_a_resize(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """Narrowed from 120 to 60 columns, the rebuilt table left lines drawn while its
    columns were measured on screen: values without the names of what they were."""
    ids = []
    for index, lr in enumerate([0.0001, 0.03, 0.5]):
        body = run(f"run-{index}", 0, 1.0 / (index + 1), params={"p.yaml": {"lr": lr}})
        ids.append(await post(alice, body))
    app = logged_in_app
    async with app.run_test(size=(120, 40)) as pilot:
        compare = await compare_runs(pilot, app, ids)
        await until(pilot, lambda: "param:lr" in compare.table.rows)
        await pilot.resize_terminal(60, 15)
        await until(pilot, lambda: compare.label_room == LABEL_ROOM_MIN)
        await pilot.pause(0.3)
        shown = on_screen(app)
        for label in ("status", "step", "param lr", "metric loss"):
            assert label in shown, shown


async def test_compare_names_a_run_set_aside_by_its_new_name(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """A compared run whose name is run anew becomes `name (1)`: its column said the old
    name, which now belongs to the new run."""

    def plotted(name: str, step: int, loss: float) -> dict:
        rows = {"dvclive/plots/metrics/loss.tsv": {"data": [{"step": step, "loss": loss}]}}
        return run(name, step, loss, plots=rows)

    ids = [await post(alice, plotted(name, 0, 1.0)) for name in ("first", "second")]
    await post(alice, plotted("second", 1, 0.5))
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        compare = await compare_runs(pilot, app, ids)
        await post(alice, {**BODIES[0], "name": "second"})
        await post(alice, plotted("second", 0, 9.0))  # the name run anew

        def label() -> str:
            columns = compare.table.columns
            return str(columns[str(ids[1])].label) if str(ids[1]) in columns else ""

        await until(pilot, lambda: label() == "second (1)")


async def test_no_color_keeps_highlights_visible_by_style(
    monkeypatch, tui_settings: TuiSettings, server: Server, alice: User
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    from tui.client import Api
    from tui.settings import Session

    token = alice.client.headers["Authorization"].split()[1]
    tui_settings.save_session(Session(server.url, "alice", token))
    app = build_app(tui_settings, Api(server.url, token))
    first = await post(alice, run("mono", 0, 1.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await post(alice, run("mono", 1, 0.25))
        await until(pilot, lambda: screen.state.rows[first].metrics["loss"] == 0.25)
        cell = screen.query_one(ExperimentTable).get_cell(str(first), "m:loss")
        assert isinstance(cell, Text)
        assert cell.style.bold and cell.style.reverse and cell.style.color is None


async def test_the_open_table_follows_members_joining_and_leaving(
    logged_in_app: LiveStudioApp, alice: User, server: Server
) -> None:
    """A member's runs appear when they join and go when they leave (found in review)."""
    app = logged_in_app
    await post(alice, {**BODIES[1], "name": "alices-run"})
    project_id = alice.client.get("/api/projects").json()[0]["id"]
    dave = server.add_user("dave")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await until(pilot, lambda: len(screen.state.rows) == 1)
        # dave posts to the same repository before he is a member: not shown to alice.
        daves = await post(dave, {**BODIES[1], "name": "daves-run"})
        invited = alice.client.post(
            f"/api/projects/{project_id}/members", json={"username": "dave"}
        )
        assert invited.status_code == 201, invited.text
        joined = dave.client.post(f"/api/invitations/{project_id}/accept")
        assert joined.status_code == 200, joined.text
        await until(pilot, lambda: daves in screen.state.rows)
        assert screen.state.rows[daves].name == "daves-run"
        left = alice.client.delete(f"/api/projects/{project_id}/members/dave")
        assert left.status_code == 204, left.text
        await until(pilot, lambda: daves not in screen.state.rows)
        assert len(screen.state.rows) == 1


async def test_the_live_counter_counts_a_run_in_two_projects_once(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    await post(alice, run("shared-run", 0, 1.0))
    repo_url = alice.client.get("/api/projects").json()[0]["repo_url"]
    made = alice.client.post("/api/projects", json={"name": "again", "repo_url": repo_url})
    assert made.status_code == 201, made.text
    await post(alice, run("other-run", 0, 1.0, repo_url="git@github.com:acme/other.git"))
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        screen = app.screen
        await until(pilot, lambda: len(screen.projects) == 3)
        assert sum(p.running for p in screen.projects.values()) == 3  # one run twice
        bar = screen.query_one(StatusBar)
        await until(pilot, lambda: bar.running == 2)
        await post(alice, {**BODIES[-1], "name": "shared-run"})  # it ends
        await until(pilot, lambda: bar.running == 1)


async def test_a_long_repository_url_leaves_the_counts_on_screen(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    from textual.widgets import DataTable

    url = "git@github.com:some-organisation/a-rather-long-repository-name-for-tests.git"
    await post(alice, {**BODIES[1], "repo_url": url})
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        table = app.screen.query_one("#projects", DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.pause()
        assert table.virtual_size.width <= SIZE[0]  # "running" was cut to "runni"
        shown = table.get_row_at(0)[1].plain
        assert shown.startswith("…") and url.endswith(shown[1:])  # the end names the repo
        await pilot.resize_terminal(140, 24)  # room to spare: the whole URL shows
        await until(pilot, lambda: table.get_row_at(0)[1].plain == url)
        await pilot.pause()
        assert table.virtual_size.width <= 140
        await pilot.resize_terminal(*SIZE)  # and back: cut again, the counts on screen
        await until(pilot, lambda: table.get_row_at(0)[1].plain == shown)
        await pilot.pause()
        assert table.virtual_size.width <= SIZE[0]
        await pilot.resize_terminal(60, 15)  # the repository had 26 cells at least
        await until(pilot, lambda: len(table.get_row_at(0)[1].plain) < len(shown))
        await pilot.pause()
        assert table.virtual_size.width <= 60 and "running" in on_screen(app)


async def test_a_run_deleted_elsewhere_leaves_compare_plots_and_details(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    from tui.screens.details import DetailsScreen

    app = logged_in_app
    a = await post(alice, run("alpha", 0, 1.0))
    b = await post(alice, run("beta", 0, 0.4))
    await post(alice, {**BODIES[2], "name": "beta"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = await select_runs(pilot, screen, [a, b])
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots = app.screen
        await until(pilot, lambda: "train/loss" in plots.charts)
        assert b in plots.charts["train/loss"].data
        gone = await asyncio.to_thread(alice.client.delete, f"/api/experiments/{b}")
        assert gone.status_code == 204
        await until(pilot, lambda: b not in plots.names)
        assert all(b not in chart.data for chart in plots.charts.values())
        assert "beta" not in plots.place and not plots.charts  # (alpha logged no series)
        await until(pilot, lambda: not plots.query(MetricPanel))  # with their legends
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is compare)
        assert compare.ids == [a] and str(b) not in compare.table.columns
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        table.move_cursor(row=table.shown_keys().index(str(a)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen) and app.screen.detail)
        details = app.screen
        await asyncio.to_thread(alice.client.delete, f"/api/experiments/{a}")
        await until(pilot, lambda: details.detail is None)
        assert "alpha was deleted" in str(details.query_one("#body").content)


async def test_plots_of_a_selection_the_filter_hides_says_so(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    a = await post(alice, run("alpha", 0, 1.0))
    b = await post(alice, run("beta", 0, 0.4))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = await select_runs(pilot, screen, [a, b])
        await pilot.press("slash", *"alp", "enter")
        await until(pilot, lambda: str(b) not in table.shown_keys())
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        await until(
            pilot,
            lambda: any(
                "1 of the 2 selected experiments is hidden" in str(n.message)
                for n in app._notifications
            ),
        )


async def test_two_projects_of_one_repository_differ_by_their_subdir_in_the_list(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    from textual.widgets import DataTable

    repo = BODIES[1]["repo_url"]
    for name, subdir in (("mono-a", "sub/a"), ("mono-b", "sub/b")):
        made = alice.client.post(
            "/api/projects", json={"name": name, "repo_url": repo, "subdir": subdir}
        )
        assert made.status_code == 201, made.text
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        table = app.screen.query_one("#projects", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        places = sorted(table.get_row_at(i)[1].plain for i in range(2))
        assert places[0].endswith("▸ sub/a") and places[1].endswith("▸ sub/b")

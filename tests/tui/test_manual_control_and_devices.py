"""Deleting and failing experiments from the table; approving device logins and revoking tokens."""

from __future__ import annotations

import asyncio
import base64
import io
from contextlib import closing

import httpx
from PIL import Image
from rich.console import Console
from textual.widgets import DataTable, Input, Label, Static
from textual_image.widget import Image as ImageWidget

from backend.db.connection import connect_sync
from tests.conftest import Server, User, fixture_bodies
from tests.tui.conftest import (
    SIZE,
    bobs_project_with,
    details_text,
    footer_text,
    open_plots,
    open_project,
    post,
    problem_of,
    until,
)
from tui.app import LiveStudioApp
from tui.screens.compare import CompareScreen
from tui.screens.details import DVC_RUN_FAILED, DetailsScreen
from tui.screens.dialogs import CodeDialog, ConfirmDialog
from tui.screens.plots import PlotsScreen
from tui.screens.profile import ProfileScreen
from tui.screens.projects import ProjectsScreen
from tui.widgets.experiment_table import ExperimentTable
from tui.widgets.footer import Footer

BODIES = fixture_bodies("dvclive_basic")


async def test_fail_then_delete_with_confirmation(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    first = await post(alice, {**BODIES[1], "name": "zombie"})
    other = await post(alice, {**BODIES[1], "name": "keeper"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await until(pilot, lambda: len(screen.state.rows) == 2)
        table = screen.query_one(ExperimentTable)
        table.move_cursor(row=table.shown_keys().index(str(first)))
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        # Its next post would make it running again: the question says so.
        assert "still running" in app.screen.question
        await pilot.press("y")
        await until(pilot, lambda: screen.state.rows[first].status == "failed")
        assert screen.state.rows[first].errors[0].text == "marked failed by alice"
        shown = await details_text(pilot, app)
        assert "reason" in shown and "MarkedFailed: marked failed by alice" in shown
        lines = [line.strip() for line in shown.splitlines()]
        at = next(i for i, line in enumerate(lines) if line.startswith("status"))
        assert lines[at + 1].startswith("reason")  # in view at 80x24, not nine lines below
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("f")  # failed already: nothing to ask
        await until(
            pilot, lambda: any("zombie is failed already" in n.message for n in app._notifications)
        )
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert first in screen.state.rows
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: first not in screen.state.rows)
        assert str(first) not in table.shown_keys() and other in screen.state.rows
        gone = await asyncio.to_thread(alice.client.get, f"/api/experiments/{first}")
        assert gone.status_code == 404
        # Deleting a run still running: its next post brings it back, and the question says so.
        table.move_cursor(row=table.shown_keys().index(str(other)))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "still running: if it posts again, it comes back" in app.screen.question
        await pilot.press("n")


async def test_a_member_who_may_not_change_a_run_is_told_so_without_being_asked_first(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    await bobs_project_with(server, alice, {**BODIES[1], "repo_url": "git@github.com:b/m.git"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)  # bob's project: alice only a member
        for key, verb in (("x", "delete"), ("f", "mark failed")):
            await pilot.press(key)
            told = f"Only its poster (bob) or the project's owner can {verb}"
            await until(pilot, lambda told=told: any(told in n.message for n in app._notifications))
            assert app.screen is screen  # no question whose answer would be a refusal
        shown = await details_text(pilot, app)
        assert "posted by" in shown and "bob" in shown


async def test_profile_approves_a_device_login_by_its_code_and_revokes_client_tokens(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    started = (
        await asyncio.to_thread(
            httpx.post,
            f"{server.url}/api/device-login",
            json={"client_name": "DVC", "token_name": "gpu-box", "scopes": ["EXPERIMENTS"]},
        )
    ).json()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.info)
        profile = app.screen
        # A wrong code is refused with the server's sentence; nothing is listed to pick from.
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, CodeDialog))
        dialog = app.screen
        await pilot.press(*"BBBBBBBB", "enter")
        # Told in the dialog, which stays open with the code to correct it.
        await until(pilot, lambda: "No pending device login" in problem_of(dialog))
        assert app.screen is dialog
        dialog.query_one(Input).value = ""
        await pilot.press(*started["user_code"].lower(), "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        question = app.screen.question
        assert "DVC asks for the access token 'gpu-box' (EXPERIMENTS)" in question
        assert started["user_code"] in question and " s ago" in question
        await pilot.press("y")
        await until(pilot, lambda: app.screen is profile)
        token = await asyncio.to_thread(
            httpx.post, f"{server.url}/api/token", json={"code": started["device_code"]}
        )
        access = token.json()["access_token"]
        # Minted when the client asked, after the approval: listed without r (a refetch
        # follows an approval by the time DVC's 5 s poll has fetched the token).
        await until(pilot, lambda: profile.info is not None and profile.info.client_tokens)
        tokens = profile.query_one("#tokens")
        # The table is filled from the info a moment later.
        await until(pilot, lambda: any(str(k.value).startswith("client:") for k in tokens.rows))
        tokens.focus()
        tokens.move_cursor(
            row=list(tokens.rows).index(
                next(k for k in tokens.rows if str(k.value).startswith("client:"))
            )
        )
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: profile.info is not None and not profile.info.client_tokens)
        refused = await asyncio.to_thread(
            httpx.post,
            f"{server.url}/api/live",
            json=BODIES[0],
            headers={"Authorization": f"token {access}"},
        )
        assert refused.status_code == 401


async def test_details_follow_the_stream_without_refetching(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch
) -> None:
    from tui import clock
    from tui.screens import details as details_module

    monkeypatch.setattr(details_module, "AGO_EVERY", 0.2)
    app = logged_in_app
    first = await post(alice, {**BODIES[1], "name": "watched"})
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        app.screen.query_one(ExperimentTable).move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen) and app.screen.detail)
        details = app.screen
        await post(alice, {**BODIES[5], "name": "watched"})  # step 2
        await until(pilot, lambda: details.detail.step == 2)
        assert details.detail.id == first and details.detail.series is not None
        # Nothing new arrives, time goes on: "how long ago" is told again as it ages.
        later = clock.now() + 600
        monkeypatch.setattr(clock, "now", lambda: later)
        body = details.query_one("#body", Static)

        def shown() -> str:
            console = Console(width=120, record=True, file=io.StringIO())
            console.print(body.content)
            return console.export_text()

        await until(pilot, lambda: "(10m ago)" in shown())


async def test_invitations_show_live_on_the_projects_screen_and_are_accepted(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    await post(alice, BODIES[1])
    bob = await asyncio.to_thread(server.add_user, "bob")
    await post(bob, {**BODIES[1], "repo_url": "git@github.com:bob/model.git"})
    bobs = (await asyncio.to_thread(bob.client.get, "/api/projects")).json()[0]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#projects").row_count == 1)
        assert not screen.query_one("#invitations").display
        footer = screen.query_one(Footer)
        assert "Accept invitation" not in footer_text(footer)  # no invitation: keys hidden
        invited = await asyncio.to_thread(
            bob.client.post, f"/api/projects/{bobs['id']}/members", json={"username": "alice"}
        )
        assert invited.status_code == 201
        await until(pilot, lambda: screen.invitations)
        assert screen.query_one("#invitations").display
        await until(pilot, lambda: "a Accept invitation" in footer_text(footer))
        assert "d Decline invitation" in footer_text(footer)
        await until(
            pilot,
            lambda: any("bob invited you to 'model'" in n.message for n in app._notifications),
        )
        await pilot.press("tab", "a")
        await until(pilot, lambda: screen.query_one("#projects").row_count == 2)
        await until(pilot, lambda: not screen.invitations)
        assert screen.projects[bobs["id"]].experiments == 1  # bob's run, now shared with her
        members = await asyncio.to_thread(bob.client.get, f"/api/projects/{bobs['id']}/members")
        assert members.json()["members"] == ["alice", "bob"]
        table = screen.query_one("#projects", DataTable)
        assert table.get_cell(str(bobs["id"]), "owner").plain == "bob"  # whose "model" it is

        # Accepted elsewhere (a shell, another TUI): the list here follows, no r needed.
        carol = await asyncio.to_thread(server.add_user, "carol")
        await post(carol, {**BODIES[1], "repo_url": "git@github.com:carol/c.git"})
        carols = (await asyncio.to_thread(carol.client.get, "/api/projects")).json()[0]
        path = f"/api/projects/{carols['id']}/members"
        await asyncio.to_thread(carol.client.post, path, json={"username": "alice"})
        await until(pilot, lambda: screen.invitations)
        accept = f"/api/invitations/{carols['id']}/accept"
        assert (await asyncio.to_thread(alice.client.post, accept)).status_code == 200
        await until(pilot, lambda: not screen.invitations and table.row_count == 3)


async def test_control_characters_never_reach_the_terminal(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    hostile = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202eexe.txt"
    body = {
        **BODIES[-1],
        "errors": [{"cls": "Err\x1b[31m", "text": f"boom {hostile}\nline two"}],
        "metrics": {"m.json": {"data": {"step": 1, f"loss{hostile}": 1.0}}},
    }
    experiment_id = await post(alice, body)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        row = screen.state.rows[experiment_id]
        texts = [row.errors[0].cls, row.errors[0].text, *row.metrics]
        for text in texts:
            assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\\x1b]52;c;ZXZpbA==\\x07" in row.errors[0].text
        assert "\nline two" in row.errors[0].text  # newlines stay in error texts
        assert any("\\u202e" in name for name in row.metrics)


def _png(size: tuple[int, int], color: str = "white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


async def test_hostile_images_leave_the_plots_screen_working(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    images = {
        "dvclive/plots/images/bomb.png": _png((20_000, 20_000)),
        "dvclive/plots/images/cut.png": _png((64, 64), "red")[:70],
        "dvclive/plots/images/fine.png": _png((8, 8), "blue"),
        # Names that mean something in a URL are drawn like any other.
        "dvclive/plots/images/sample #1?.png": _png((6, 6), "green"),
        "dvclive/plots/images/../up%2F.png": _png((4, 4), "white"),
    }
    body = {
        **BODIES[2],
        "plots": {path: {"image": base64.b64encode(png).decode()} for path, png in images.items()},
    }
    await post(alice, body)
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        await pilot.press("p")  # the first key acts: the cursor starts on the experiment
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        plots = app.screen
        await until(pilot, lambda: len(plots.query(".image-missing")) == 2)
        await until(pilot, lambda: len(plots.query(".image")) == 3)
        reasons = " ".join(_text(w) for w in plots.query(".image-missing").results(Static))
        assert "pixel limit" in reasons and "damaged image" in reasons
        drawn = sorted(w.image.size for w in plots.query(".image").results(ImageWidget))  # type: ignore[union-attr]
        assert drawn == [(4, 4), (6, 6), (8, 8)]
        titles = [str(t.render()) for t in plots.query(".image-title")]
        assert any("bomb.png" in t for t in titles) and any("fine.png" in t for t in titles)
        await pilot.press("escape")  # the screen still answers keys
        await until(pilot, lambda: not isinstance(app.screen, PlotsScreen))


def _text(widget: Static) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def test_the_first_keys_act_and_group_headers_act_on_their_group(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    a = await post(alice, {**BODIES[1], "name": "alpha"})
    b = await post(alice, {**BODIES[1], "name": "beta"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        table = screen.query_one(ExperimentTable)
        await until(pilot, lambda: len(table.shown_keys()) == 3)
        assert table.current_experiment_id() == b  # newest first, under its commit's header
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        assert list(app.screen.names) == [b]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("up")  # the group header
        assert table.current_group() is not None
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlotsScreen))
        assert set(app.screen.names) == {a, b}
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("x")
        await until(pilot, lambda: any("group header" in n.message for n in app._notifications))
        assert app.screen is screen
        await pilot.press("enter")  # folds the group
        await until(pilot, lambda: len(table.shown_keys()) == 1)
        assert "2 hidden" in table.get_cell(table.shown_keys()[0], "name").plain
        await pilot.press("enter")
        await until(pilot, lambda: len(table.shown_keys()) == 3)


async def test_plot_tools_from_the_keyboard(logged_in_app: LiveStudioApp, alice: User) -> None:
    app = logged_in_app
    losses = [0.0, 8.0, 0.0, 8.0, 0.0, 8.0]
    base = {**BODIES[2]}
    for step, loss in enumerate(losses):
        await post(
            alice,
            {
                **base,
                "step": step,
                "plots": {
                    "dvclive/plots/metrics/train/loss.tsv": {"data": [{"step": step, "loss": loss}]}
                },
            },
        )
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        plots, chart = await open_plots(pilot, app, "train/loss")
        raw = next(iter(chart.drawn.values()))[1]
        assert max(raw) == 8.0
        await pilot.press("plus", "plus")
        assert plots.view.weight == 0.8
        smoothed = next(iter(chart.drawn.values()))[1]
        assert max(smoothed) < 8.0 and "(smoothed 0.8)" in chart.title_text
        await pilot.press("minus", "minus")
        assert plots.view.weight == 0.0
        await pilot.press("L")
        assert plots.view.log_scale
        assert 0.0 not in next(iter(chart.drawn.values()))[1]  # zero has no place on a log scale
        await pilot.press("L", "left")
        assert plots.view.cursor == 5
        await pilot.press("left")
        assert plots.view.cursor == 4 and "step 4: 0" in chart.title_text
        await pilot.press("right", "right")
        assert plots.view.cursor == 5 and "step 5: 8" in chart.title_text


async def test_a_failed_dvc_exp_run_says_why_in_its_details(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """DVC's done without a commit carries no error: the details still give the reason."""
    for body in fixture_bodies("dvc_exp_run_fail"):
        await post(alice, body)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await until(pilot, lambda: any(r.status == "failed" for r in screen.state.rows.values()))
        shown = await details_text(pilot, app)
        assert "reason" in shown and DVC_RUN_FAILED in shown


async def test_projects_are_deleted_from_the_list_by_their_owner_only(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    with closing(connect_sync(server.database)) as conn:  # the first user is an admin
        conn.execute("UPDATE users SET is_admin = ? WHERE username = 'alice'", (False,))
    _, bobs = await bobs_project_with(server, alice, {**BODIES[1], "repo_url": "https://b.org/b/m"})
    made = await asyncio.to_thread(
        alice.client.post,
        "/api/projects",
        json={"name": "[b]vis[/b]", "repo_url": "git@github.com:acme/vision.git"},
    )
    mine = made.json()["id"]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        screen = app.screen
        table = screen.query_one("#projects", DataTable)
        await until(pilot, lambda: table.row_count == 2)

        table.move_cursor(row=table.get_row_index(str(bobs["id"])))
        await pilot.press("x")  # only a member of bob's: told, not asked
        told = "Only the project's owner (bob) or an admin can delete it."
        await until(pilot, lambda: any(told in n.message for n in app._notifications))
        assert app.screen is screen

        table.move_cursor(row=table.get_row_index(str(mine)))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        question = str(app.screen.query_one(Label).render())
        # Its name as it is, not as markup, and which one (two may share a name).
        question = " ".join(question.split())  # (wrapped in the dialog)
        assert (
            f"Delete project [b]vis[/b] (id {mine}, git@github.com:acme/vision.git, owned by"
            " alice, 0 experiments)?"
        ) in question
        await pilot.press("y")
        await until(pilot, lambda: mine not in screen.projects)
        assert list(screen.projects) == [bobs["id"]]
    left = (await asyncio.to_thread(alice.client.get, "/api/projects")).json()
    assert [p["id"] for p in left] == [bobs["id"]]  # deleted on the server, not just hidden


async def test_details_show_long_names_whole_at_80_columns(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    long = "a/really/deeply/nested/and/very/long/metric/name/for/the/details/page"
    body = {**BODIES[1], "name": "longnames"}
    body["metrics"] = {"dvclive/metrics.json": {"data": {long: 0.5, "step": 0}}}
    body["params"] = None  # an empty heading says "none", as images does
    await post(alice, body)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        await pilot.press("enter")
        await until(
            pilot, lambda: isinstance(app.screen, DetailsScreen) and app.screen.detail is not None
        )
        await pilot.pause()
        console = Console(width=SIZE[0] - 2, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#body").content)
        text = console.export_text()
    assert "…" not in text
    assert long in "".join(line.strip().split("  ")[0] for line in text.splitlines())
    assert "none" in text.split("\nparams", 1)[1].splitlines()[0]
    # The long name leaves the commit's SHA room to stay on one line.
    assert any(BODIES[1]["baseline_sha"] in line for line in text.splitlines())


async def test_the_step_cursor_reads_exact_values_of_a_downsampled_line(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    # 2,000 steps drawn in ~160 points: a bucket's point was shown as the cursor's value
    # ("0.279 (at 95)" where step 96 logged 0.2893).
    app = logged_in_app
    values = {s: round(1 + (s * 7919 % 1000) / 1000, 4) for s in range(2000)}
    rows = [{"step": s, "loss": v} for s, v in values.items()]
    await post(
        alice,
        {
            **BODIES[1],
            "name": "long",
            "step": 1999,
            "plots": {"dvclive/plots/metrics/train/loss.tsv": {"data": rows}},
        },
    )
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        plots, chart = await open_plots(pilot, app, "train/loss")
        assert len(next(iter(chart.data.values()))) < 1000  # downsampled
        await pilot.press("left", "left", "left")
        step = plots.view.cursor
        assert step is not None and step < 1999
        await until(pilot, lambda: plots.view.exact_at == step)
        assert f"step {step}: {values[step]:.4g}" in chart.title_text

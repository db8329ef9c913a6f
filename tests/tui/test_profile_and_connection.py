"""Profile tokens through the TUI; reconnecting after a server restart; expired sessions."""

from __future__ import annotations

import asyncio

import httpx
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from tests.conftest import Server, User, fixture_bodies
from tests.tui.conftest import SIZE, footer_text, open_project, post, problem_of, until
from tui.app import LiveStudioApp
from tui.client import StreamState
from tui.messages import ConnectionChanged
from tui.screens.details import DetailsScreen
from tui.screens.dialogs import ConfirmDialog, TokenDialog
from tui.screens.login import LoginScreen
from tui.screens.plots import PlotsScreen
from tui.screens.profile import ProfileScreen
from tui.screens.projects import ProjectsScreen
from tui.widgets.footer import Footer
from tui.widgets.status_bar import StatusBar
from tui.widgets.tables import cursor_key

BODIES = fixture_bodies("dvclive_basic")


async def live_status(server: Server, token: str) -> int:
    response = await asyncio.to_thread(
        httpx.post,
        f"{server.url}/api/live",
        json=BODIES[0],
        headers={"Authorization": f"token {token}"},
    )
    return response.status_code


async def open_profile(pilot, app: LiveStudioApp) -> ProfileScreen:
    """From the projects list to a loaded profile screen."""
    await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
    await pilot.press("t")
    await until(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.info)
    return app.screen


async def test_regenerate_and_delete_token_from_profile(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    # The demo's lines to copy (? shows them) follow the token: they kept a revoked one.
    url_line = f"export DVC_STUDIO_URL={server.url}"
    app.settings.welcome_lines = f"{url_line}\nexport DVC_STUDIO_TOKEN={alice.token}"
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        assert profile.info.profile_token.prefix == alice.token[:8]
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "stops working at once" in app.screen.question
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, TokenDialog))
        new_token = app.screen.token
        assert new_token.startswith("lst_") and new_token != alice.token
        await pilot.press("y")  # copy (OSC 52)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is profile)
        assert await live_status(server, alice.token) == 401
        assert await live_status(server, new_token) == 200
        await until(pilot, lambda: profile.info.profile_token.prefix == new_token[:8])
        assert app.settings.welcome_lines == f"{url_line}\nexport DVC_STUDIO_TOKEN={new_token}"

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # cancelled: nothing happens
        await until(pilot, lambda: app.screen is profile)
        assert await live_status(server, new_token) == 200
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: profile.info is not None and profile.info.profile_token is None)
        assert await live_status(server, new_token) == 401
        assert app.settings.welcome_lines.splitlines() == [
            url_line,
            "export DVC_STUDIO_TOKEN=  # deleted: t (profile), then g, makes a new one",
        ]


async def test_an_outage_is_told_once_not_by_every_screen_following_a_stream(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    """The projects list under an open project follows its own stream, and Textual counts
    it as current: one outage, two identical toasts."""
    app = logged_in_app
    await post(alice, {**BODIES[1], "name": "steady"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        await until(pilot, lambda: screen.query_one(StatusBar).connected)

        def told() -> int:
            return sum(n.message.startswith("Reconnecting:") for n in app._notifications)

        await asyncio.to_thread(server.stop)
        try:
            await until(pilot, lambda: told() > 0, timeout=15)
            await pilot.pause(0.5)
            assert told() == 1
            # Back on the projects list, its own stream's next retry of the same outage
            # told it again.
            reason = next(
                n.message for n in app._notifications if n.message.startswith("Reconnecting:")
            )
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
            again = StreamState(connected=False, retry_in=8, reason=reason[14:-1])
            app.screen.post_message(ConnectionChanged(again))
            await pilot.pause(0.3)
            assert told() == 1
        finally:
            await asyncio.to_thread(server.start)


async def test_a_project_opened_while_the_server_is_away_does_not_say_it_is_empty(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    """It said "No experiments yet: point DVCLive here" while it could not ask."""
    from tui.screens.project import ProjectScreen
    from tui.widgets.experiment_table import ExperimentTable

    app = logged_in_app
    run = await post(alice, {**BODIES[1], "name": "steady"})
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await until(pilot, lambda: app.screen.query_one("#projects").row_count > 0)
        await asyncio.to_thread(server.stop)
        try:
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
            screen = app.screen
            table = screen.query_one(ExperimentTable)

            def shown() -> str:
                return "\n".join(table.render_line(y).text for y in range(4))

            await until(pilot, lambda: "does not answer yet" in shown())
            assert "No experiments yet" not in shown()
        finally:
            await asyncio.to_thread(server.start)
        await until(pilot, lambda: run in screen.state.rows, timeout=20)


async def test_reconnects_after_server_restart_without_losing_events(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    first = await post(alice, {**BODIES[1], "name": "steady"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, app)
        bar = screen.query_one(StatusBar)
        await until(pilot, lambda: bar.connected)
        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: not bar.connected and "reconnecting" in bar.connection)
        # The bar counts down to the next try (it showed the whole wait, unchanging).
        await until(pilot, lambda: bar.connection == "reconnecting in 2s", timeout=5)
        await until(pilot, lambda: bar.connection == "reconnecting in 1s", timeout=2)
        await asyncio.to_thread(server.start)
        await post(alice, {**BODIES[3], "name": "steady"})  # step 1, while the TUI is still away
        await until(pilot, lambda: bar.connected, timeout=20)
        await until(pilot, lambda: screen.state.rows[first].step == 1)
        await post(alice, {**BODIES[5], "name": "steady"})
        await until(pilot, lambda: screen.state.rows[first].step == 2)


async def test_details_and_plots_opened_while_the_server_is_away_load_once_it_is_back(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    await post(alice, {**BODIES[1], "name": "steady"})
    await post(alice, {**BODIES[2], "name": "steady"})  # plot rows: series to draw
    async with app.run_test(size=SIZE) as pilot:
        project = await open_project(pilot, app)
        bar = project.query_one(StatusBar)

        async def open_while_away(key: str, screen: type[Screen[None]], note: str) -> Static:
            """Stop the server, open ``screen`` with ``key``: its note says why it is empty."""
            await until(pilot, lambda: app.screen is project and bar.connected)
            await asyncio.to_thread(server.stop)
            await until(pilot, lambda: not bar.connected)
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, screen))
            shown = app.screen.query_one(note, Static)
            await until(pilot, lambda: "Could not load" in str(shown.render()))
            await asyncio.to_thread(server.start)
            return shown

        body = await open_while_away("enter", DetailsScreen, "#body")
        details = app.screen
        assert isinstance(details, DetailsScreen)
        # Back without a key pressed: the details load.
        await until(pilot, lambda: details.detail is not None, timeout=20)
        assert details.detail is not None and details.detail.name == "steady"
        assert "Could not load" not in str(body.render())  # the table replaced the note

        await pilot.press("escape")
        await open_while_away("p", PlotsScreen, "#images-note")
        plots = app.screen
        assert isinstance(plots, PlotsScreen)
        await until(pilot, lambda: plots.charts, timeout=20)  # drawn without a key pressed


async def test_expired_session_returns_to_login(logged_in_app: LiveStudioApp, alice: User) -> None:
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await asyncio.to_thread(alice.client.post, "/api/auth/logout")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, LoginScreen))
    assert app.settings.load_session() is None


async def test_change_password_and_reset_tokens_from_profile(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    from textual import events
    from textual.widgets import Checkbox, Input

    from tui.screens.dialogs import PasswordDialog

    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, PasswordDialog))
        dialog = app.screen
        # Drawn over the profile (dimmed) as every dialog is, with the footer's `esc Cancel`
        # showing: it was opaque, a blank screen and footer around it.
        assert dialog.styles.background.a < 1
        assert "Cancel" in footer_text(profile.query_one(Footer))
        dialog.query_one("#current", Input).value = "correct-horse-battery"
        dialog.query_one("#new", Input).value = "a-brand-new-secret"
        dialog.query_one("#again", Input).value = "a-brand-typo"
        dialog.query_one("#again", Input).focus()
        await pilot.press("enter")  # in the last field: submits (here: refused, a typo)
        problem = dialog.query_one("#problem", Label)
        await until(pilot, lambda: "do not match" in str(problem.render()))
        assert not dialog.query_one("#reset", Checkbox).value  # enter never reaches the box
        dialog.query_one("#again", Input).value = "a-brand-new-secret"
        dialog.query_one("#current", Input).value = "not-my-password"
        await pilot.press("enter")  # refused by the server: said in the dialog, kept open
        await until(
            pilot,
            lambda: (
                "password" in problem_of(dialog).lower() and "Sending" not in problem_of(dialog)
            ),
        )
        assert (
            app.screen is dialog and dialog.query_one("#new", Input).value == "a-brand-new-secret"
        )
        dialog.query_one("#current", Input).value = "correct-horse-battery"
        dialog.query_one("#reset", Checkbox).value = True
        dialog.query_one("#again", Input).focus()
        await pilot.pause()
        for _ in range(2):  # enter twice in a burst: the second never reaches the profile
            app.post_message(events.Key("enter", "\r"))
        await until(pilot, lambda: app.screen is profile)
        await pilot.pause(0.3)
        assert app.screen is profile
        await until(pilot, lambda: profile.info is not None and profile.info.profile_token is None)
        # The projects list below kept its event stream through the change: a run posted
        # now (with a new token) still appears, live.
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        fresh = await asyncio.to_thread(lambda: server.login("alice", "a-brand-new-secret"))
        token = (await asyncio.to_thread(fresh.post, "/api/user/token")).json()["token"]
        assert await live_status(server, token) == 200
        screen = app.screen
        await until(pilot, lambda: screen.query_one("#projects").row_count == 1)
        assert screen.query_one(StatusBar).connected
    assert await live_status(server, alice.token) == 401  # every token was reset


async def test_projects_list_follows_new_and_deleted_projects(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        screen = app.screen
        hint = screen.query_one("#no-projects", Label)
        # A new install: not a blank screen, but how a project comes (and it stays).
        await until(pilot, lambda: hint.display and "DVC_STUDIO_TOKEN" in str(hint.render()))
        assert hint.region.height > 0
        # Keys for a project leave the footer while there is none (each was only a toast).
        footer = screen.query_one(Footer)

        def project_keys() -> set[str]:
            return {k for k in ("Open", "Members", "Delete") if k in footer_text(footer)}

        await until(pilot, lambda: "Profile" in footer_text(footer))
        assert project_keys() == set()
        made = await asyncio.to_thread(
            alice.client.post,
            "/api/projects",
            json={"name": "vision", "repo_url": "git@github.com:acme/vision.git"},
        )
        project_id = made.json()["id"]
        await until(pilot, lambda: project_id in screen.projects)
        assert not hint.display
        await until(pilot, lambda: project_keys() == {"Open", "Members", "Delete"})
        await asyncio.to_thread(alice.client.delete, f"/api/projects/{project_id}")
        await until(pilot, lambda: project_id not in screen.projects)
        assert str(project_id) not in screen.query_one("#projects").rows
        assert hint.display
        await until(pilot, lambda: project_keys() == set())


async def test_ssh_keys_are_added_listed_and_removed_in_the_profile(
    logged_in_app: LiveStudioApp, server: Server, alice: User, tmp_path
) -> None:
    import subprocess

    from textual.widgets import Input

    from tui.screens.dialogs import KeyDialog

    key = tmp_path / "k"
    await asyncio.to_thread(
        subprocess.run,
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", str(key)],
        check=True,
    )
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, KeyDialog))
        dialog = app.screen
        dialog.query_one("#key", Input).value = "not a key"
        await pilot.press("enter")
        # Refused, the dialog stays with the reason and what was typed, to correct it.
        await until(pilot, lambda: "not an SSH public key" in problem_of(dialog))
        assert app.screen is dialog and dialog.query_one("#key", Input).value == "not a key"
        # A private key pasted by mistake never leaves the machine.
        private = key.read_text().strip().splitlines()[0]
        dialog.query_one("#key", Input).value = private
        await pilot.press("enter")
        await pilot.pause()
        assert "That is a private key" in problem_of(dialog)
        dialog.query_one("#key", Input).value = key.with_suffix(".pub").read_text().strip()
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is profile and profile.keys)
        assert profile.keys[0].comment == "alice@laptop"
        listed = (await asyncio.to_thread(alice.client.get, "/api/user/keys")).json()
        assert [k["fingerprint"] for k in listed] == [profile.keys[0].fingerprint]
        keys_table = profile.query_one("#keys", DataTable)
        # The whole row fits 80 columns ("last used" was pushed off by the fingerprint).
        assert keys_table.virtual_size.width <= 80
        shown = keys_table.get_row_at(0)[0].plain
        assert shown.endswith("…") and profile.keys[0].fingerprint.startswith(shown[:-1])
        keys_table.focus()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "It stops logging in at once" in app.screen.question
        await pilot.press("y")
        await until(pilot, lambda: app.screen is profile and not profile.keys)
        assert (await asyncio.to_thread(alice.client.get, "/api/user/keys")).json() == []


def watch_project(user: User, *kinds: str) -> None:
    """Watches of ``kinds`` on the user's first project, made through the API."""
    project_id = user.client.get("/api/projects").json()[0]["id"]
    for kind in kinds:
        made = user.client.post("/api/watches", json={"kind": kind, "project_id": project_id})
        assert made.status_code == 201, made.text


async def test_the_profile_refreshes_itself_and_keeps_the_cursor(
    logged_in_app: LiveStudioApp, alice: User, monkeypatch
) -> None:
    from tui.screens import profile as profile_module

    monkeypatch.setattr(profile_module, "REFRESH_SECONDS", 0.3)
    await post(alice, BODIES[1])
    watch_project(alice, "nonfinite", "status")
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        watches = profile.query_one("#watches", DataTable)
        await until(pilot, lambda: watches.row_count == 2)
        watches.focus()
        watches.move_cursor(row=1)

        def under_cursor() -> str | None:
            return cursor_key(watches)

        chosen = under_cursor()
        # A watch made elsewhere (another session, the API) shows without r...
        await asyncio.to_thread(watch_project, alice, "stalled")
        await until(pilot, lambda: watches.row_count == 3)
        # ...and the cursor stayed on the watch it was on, also when another one goes.
        assert under_cursor() == chosen
        above = str(watches.coordinate_to_cell_key((0, 0)).row_key.value)
        assert above != chosen and watches.cursor_row >= 1
        await asyncio.to_thread(alice.client.delete, f"/api/watches/{above}")
        await until(pilot, lambda: watches.row_count == 2)
        assert under_cursor() == chosen  # one row up, the same watch


async def test_j_and_k_move_in_the_profile_lists(logged_in_app: LiveStudioApp, alice: User) -> None:
    await post(alice, BODIES[1])
    watch_project(alice, "nonfinite", "status")
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        watches = profile.query_one("#watches", DataTable)
        await until(pilot, lambda: watches.row_count == 2)
        watches.focus()
        await pilot.press("j")
        assert watches.cursor_row == 1
        await pilot.press("k")
        assert watches.cursor_row == 0 and app.screen is profile  # k no longer adds a key


async def test_a_token_listed_after_none_was_gets_columns_its_own_width(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    app = logged_in_app
    assert (await asyncio.to_thread(alice.client.delete, "/api/user/token")).status_code == 204
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        table = profile.query_one("#tokens", DataTable)
        await until(pilot, lambda: "none" in table.rows)  # "no tokens: press g…" in the name
        footer = footer_text(profile.query_one(Footer))
        # Nothing to delete, revoke or change: those keys leave the footer.
        assert "g Generate token" in footer
        for absent in ("Delete token", "Revoke", "Edit watch"):
            assert absent not in footer, footer
        made = await asyncio.to_thread(alice.client.post, "/api/user/token")
        assert made.status_code in (200, 201), made.text
        await pilot.press("r")
        await until(pilot, lambda: "profile" in table.rows)
        await until(pilot, lambda: "d Delete token" in footer_text(profile.query_one(Footer)))
        await pilot.pause()
        widths = {
            str(key.value): column.get_render_width(table) for key, column in table.columns.items()
        }
        # The name column fits "profile", not the hint it held: "last used" is on screen.
        assert widths["name"] < 20
        assert sum(widths.values()) <= SIZE[0]


async def test_the_profile_bar_says_whether_its_last_refresh_reached_the_server(
    logged_in_app: LiveStudioApp, server: Server, monkeypatch
) -> None:
    from tui.screens import profile as profile_module

    monkeypatch.setattr(profile_module, "REFRESH_SECONDS", 0.3)
    app = logged_in_app
    async with app.run_test(size=SIZE) as pilot:
        profile = await open_profile(pilot, app)
        bar = profile.query_one(StatusBar)
        await until(pilot, lambda: bar.connected and "refreshed" in bar.connection)
        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: not bar.connected and "offline" in bar.connection)
        assert "offline" in str(bar.render())  # shown, not only remembered
        await asyncio.to_thread(server.start)
        await until(pilot, lambda: bar.connected, timeout=20)


async def test_an_ssh_tui_whose_session_ends_closes_instead_of_offering_a_login_form(
    logged_in_app: LiveStudioApp, alice: User
) -> None:
    """The login form's server field let an SSH user make the server's own host post to
    any address (its internal services) and read their answers."""
    from tui.app import SSH_SESSION_ENDED

    app = logged_in_app
    app.settings.over_ssh = True
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await asyncio.to_thread(alice.client.post, "/api/auth/logout")
        await pilot.press("r")
        await until(pilot, lambda: not app.is_running)
        assert not any(isinstance(s, LoginScreen) for s in app.screen_stack)
    assert app.return_code == 1 and "connect again with ssh" in SSH_SESSION_ENDED


async def test_the_demo_welcome_fits_a_short_narrow_terminal_and_folds_as_the_shell_reads(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    """At 60x15 the welcome's first lines (the demo's password) were cut off above the
    screen, and its token wrapped mid-word: copied with the mouse, two broken commands."""
    from textual.widgets import Button

    from tui.screens.dialogs import CopyDialog, ShellLines
    from tui.widgets.shell_lines import CUT_NOTE

    app = logged_in_app
    app.settings.welcome = (  # as long as the demo's own
        "Demo server http://127.0.0.1:38613 (user demo, password demo-password); it stops"
        " when you quit. p plots, space selects, c compares, ? every key, esc all projects."
        " Send your own runs to it:"
    )
    lines = f"export DVC_STUDIO_URL={server.url}\nexport DVC_STUDIO_TOKEN={alice.token}"
    app.settings.welcome_lines = lines
    async with app.run_test(size=(60, 15)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        app.show_welcome()
        await until(pilot, lambda: isinstance(app.screen, CopyDialog))
        dialog = app.screen
        await pilot.pause(0.2)
        box = dialog.query_one(".dialog")
        assert box.region.y >= 0 and box.region.bottom <= 15 and box.scroll_y == 0
        shown = str(dialog.query_one(ShellLines).render()).splitlines()
        # Folded between words only, where the blank a mouse copy brings does no harm; a
        # token too wide is cut in sight, never folded inside (it pasted as two words).
        token_line = lines.splitlines()[1]
        assert shown[1] == "export \\" and shown[-1] == CUT_NOTE
        assert shown[2].endswith("…") and token_line.split()[1].startswith(shown[2][:-1])
        assert dialog.query_one("#done", Button).has_focus
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))


async def test_a_dialog_on_a_short_terminal_shows_its_title_and_its_keys(
    logged_in_app: LiveStudioApp,
) -> None:
    """At 60x15 the password dialog opened scrolled past its title, and its `esc Cancel`
    sat behind the profile's three-line footer; its buttons were scrolled out of view."""
    from textual.widgets import Button

    from tui.screens.dialogs import PasswordDialog

    app = logged_in_app
    async with app.run_test(size=(60, 15)) as pilot:
        await open_profile(pilot, app)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, PasswordDialog))
        dialog = app.screen
        await pilot.pause(0.2)
        box, footer = dialog.query_one(".dialog"), dialog.query_one(Footer)
        assert box.scroll_y == 0 and box.region.y >= 0
        assert "Cancel" in footer_text(footer)
        assert footer.region.bottom == 15 and box.region.bottom <= footer.region.y
        # Its buttons too: scrolled below the fields, Change could not be seen to be there.
        change = dialog.query_one("#change", Button)
        assert change.region.height > 0 and box.region.contains_region(change.region)

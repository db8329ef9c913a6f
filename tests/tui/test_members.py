"""The members screen: the owner invites and removes, a member leaves, all of it live."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input, Label

from tests.conftest import Server, User, fixture_bodies
from tests.tui.conftest import (
    SIZE,
    bobs_project_with,
    footer_text,
    post,
    problem_of,
    until,
)
from tui.app import LiveStudioApp
from tui.screens.dialogs import ConfirmDialog, InviteDialog
from tui.screens.members import INVITED, MembersScreen
from tui.screens.projects import ProjectsScreen
from tui.widgets.footer import Footer

BODY = fixture_bodies("dvclive_basic")[1]


def roles(screen: MembersScreen) -> dict[str, str]:
    """The list as shown: user cell → role cell."""
    table = screen.query_one("#members", DataTable)
    return {
        table.get_cell_at((row, 0)).plain: table.get_cell_at((row, 1)).plain
        for row in range(table.row_count)
    }


def told(app: LiveStudioApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


async def alices_project_and_bob(server: Server, alice: User) -> tuple[User, dict]:
    """Alice's project (from her run) and a user bob who is not in it yet."""
    await post(alice, BODY)
    bob = await asyncio.to_thread(server.add_user, "bob")
    (project,) = (await asyncio.to_thread(alice.client.get, "/api/projects")).json()
    return bob, project


async def open_members(pilot, app: LiveStudioApp) -> MembersScreen:
    await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
    await until(pilot, lambda: app.screen.query_one("#projects").row_count > 0)
    await pilot.press("m")
    await until(pilot, lambda: isinstance(app.screen, MembersScreen))
    screen = app.screen
    assert isinstance(screen, MembersScreen)
    await until(pilot, lambda: screen.members is not None and screen.me is not None)
    return screen


async def test_the_owner_invites_sees_answers_live_and_removes(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    bob, project = await alices_project_and_bob(server, alice)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app)
        assert roles(screen) == {"alice (you)": "owner"}
        title = str(screen.query_one("#members-title", Label).content)  # whose, by name alone
        assert title == f"Members of {project['name']} (owner alice, id {project['id']})"
        footer = screen.query_one(Footer)
        assert "i Invite" in footer_text(footer) and "x Remove" in footer_text(footer)
        assert "Leave" not in footer_text(footer)  # the owner deletes the project instead
        assert "You own this project" in str(screen.query_one("#members-hint", Label).content)

        # An unknown name: told in the dialog, which keeps the name to correct it.
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InviteDialog))
        dialog = app.screen
        dialog.query_one(Input).value = "nobody"
        await pilot.press("enter")
        await until(pilot, lambda: "nobody" in problem_of(dialog))
        assert app.screen is dialog and roles(screen) == {"alice (you)": "owner"}
        dialog.query_one(Input).value = "bob"
        await pilot.press("enter")
        await until(pilot, lambda: roles(screen).get("bob") == INVITED)
        assert told(app, "Invited bob")

        # Bob declines in his own session: the list here follows without r.
        declined = await asyncio.to_thread(bob.client.delete, f"/api/invitations/{project['id']}")
        assert declined.status_code == 204
        await until(pilot, lambda: "bob" not in roles(screen))

        # Invited again (by the API, as another of alice's sessions would) and accepted.
        path = f"/api/projects/{project['id']}/members"
        await asyncio.to_thread(alice.client.post, path, json={"username": "bob"})
        await until(pilot, lambda: roles(screen).get("bob") == INVITED)
        await asyncio.to_thread(bob.client.post, f"/api/invitations/{project['id']}/accept")
        await until(pilot, lambda: roles(screen).get("bob") == "member")

        # x on the owner's own row says what to do instead; on bob's it asks, then removes.
        table = screen.query_one("#members", DataTable)
        table.move_cursor(row=0)
        await pilot.press("x")
        await until(pilot, lambda: told(app, "delete it instead"))
        table.move_cursor(row=1)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert roles(screen).get("bob") == "member"
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: "bob" not in roles(screen))
        assert (await asyncio.to_thread(bob.client.get, "/api/projects")).json() == []
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))


async def test_a_member_sees_the_list_may_only_leave_and_the_screen_closes(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    bob, project = await bobs_project_with(server, alice, {**BODY, "repo_url": "git@x:b/m.git"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app)
        assert roles(screen) == {"bob": "owner", "alice (you)": "member"}
        footer = screen.query_one(Footer)
        assert "l Leave" in footer_text(footer)
        assert "Invite" not in footer_text(footer) and "Remove" not in footer_text(footer)
        assert "Only the project's owner (bob)" in str(
            screen.query_one("#members-hint", Label).content
        )
        await pilot.press("i")  # hidden keys do nothing: no dialog, no request
        await pilot.pause(0.2)
        assert app.screen is screen

        # The owner invites someone: a member's list follows too.
        await asyncio.to_thread(server.add_user, "carol")
        path = f"/api/projects/{project['id']}/members"
        await asyncio.to_thread(bob.client.post, path, json={"username": "carol"})
        await until(pilot, lambda: roles(screen).get("carol") == INVITED)

        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        projects = app.screen
        await until(pilot, lambda: projects.query_one("#projects").row_count == 0)
        assert told(app, f"You left {project['name']}.")
        mine = (await asyncio.to_thread(alice.client.get, "/api/projects")).json()
        assert project["id"] not in [p["id"] for p in mine]
        members = (await asyncio.to_thread(bob.client.get, path)).json()
        assert members["members"] == ["bob"]


async def test_an_invitation_declined_elsewhere_or_withdrawn_leaves_the_list(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    bob = await asyncio.to_thread(server.add_user, "bob")
    await post(bob, {**BODY, "repo_url": "git@github.com:bob/model.git"})
    bobs = (await asyncio.to_thread(bob.client.get, "/api/projects")).json()[0]
    path = f"/api/projects/{bobs['id']}/members"
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        screen = app.screen
        assert isinstance(screen, ProjectsScreen)
        await asyncio.to_thread(bob.client.post, path, json={"username": "alice"})
        await until(pilot, lambda: screen.invitations)
        # Declined in a shell: gone from the list here too.
        decline = f"/api/invitations/{bobs['id']}"
        assert (await asyncio.to_thread(alice.client.delete, decline)).status_code == 204
        await until(pilot, lambda: not screen.invitations)
        assert not screen.query_one("#invitations").display
        # Withdrawn by the owner: the same.
        await asyncio.to_thread(bob.client.post, path, json={"username": "alice"})
        await until(pilot, lambda: screen.invitations)
        withdrawn = await asyncio.to_thread(bob.client.delete, f"{path}/alice")
        assert withdrawn.status_code == 204
        await until(pilot, lambda: not screen.invitations)


async def test_withdrawing_an_invitation_accepted_meanwhile_removes_nobody(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    app = logged_in_app
    bob, project = await alices_project_and_bob(server, alice)
    path = f"/api/projects/{project['id']}/members"
    await asyncio.to_thread(alice.client.post, path, json={"username": "bob"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_members(pilot, app)
        await until(pilot, lambda: roles(screen).get("bob") == INVITED)
        screen.query_one("#members", DataTable).move_cursor(row=1)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Withdraw the invitation of bob?" in app.screen.question
        # Bob accepts while alice still reads the question.
        await asyncio.to_thread(bob.client.post, f"/api/invitations/{project['id']}/accept")
        await pilot.press("y")
        await until(pilot, lambda: told(app, "accepted the invitation meanwhile"))
        await until(pilot, lambda: roles(screen).get("bob") == "member")
        assert "bob" in (await asyncio.to_thread(alice.client.get, path)).json()["members"]


async def test_removed_while_the_members_are_open_over_the_project_says_so_once(
    logged_in_app: LiveStudioApp, server: Server, alice: User
) -> None:
    from tests.tui.conftest import open_project
    from tui.screens.project import ProjectScreen

    app = logged_in_app
    bob, project = await bobs_project_with(server, alice, {**BODY, "repo_url": "git@x:b/m.git"})
    async with app.run_test(size=SIZE) as pilot:
        await open_project(pilot, app)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, MembersScreen))
        path = f"/api/projects/{project['id']}/members/alice"
        assert (await asyncio.to_thread(bob.client.delete, path)).status_code == 204
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))
        await pilot.pause(0.5)
        gone = [n for n in app._notifications if "no longer a member" in n.message]
        assert len(gone) == 1, [n.message for n in gone]
        assert not any(isinstance(s, ProjectScreen | MembersScreen) for s in app.screen_stack)

"""What one account may hold, so that no user can bury another (or the server) in it."""

from __future__ import annotations

from backend.db import repository
from backend.db.writer import WriteContext
from backend.services.errors import Conflict

MAX_OWNED_PROJECTS = 1_000
"""Projects one account may own (made by hand or by its runs): 5,000 took six seconds to
make, and every one is in its owner's lists and streams. A project made to keep a leaving
member's runs visible (``projects._rehome``) is made even past it: no run is ever left
visible to nobody, and each one takes another account's project and consent."""
MAX_WAITING_INVITATIONS = 20
"""Invitations from one user that another has not answered yet: 2,000 from one stranger
buried a colleague's real invitation at the bottom of the list."""


def check_may_own_another(ctx: WriteContext, owner_id: int) -> None:
    """Refuse a project past ``MAX_OWNED_PROJECTS``."""
    if repository.owned_projects(ctx.conn, owner_id) >= MAX_OWNED_PROJECTS:
        raise Conflict(
            f"This account owns {MAX_OWNED_PROJECTS:,} projects, the most one account may;"
            " delete some it no longer needs first."
        )


def check_may_invite(
    ctx: WriteContext, project_id: int, invitee: int, username: str, inviter: int
) -> None:
    """Refuse a new invitation past ``MAX_WAITING_INVITATIONS`` from one user to another
    (renewing one that waits adds none)."""
    waiting = repository.invitations_waiting(ctx.conn, invitee, inviter)
    if waiting >= MAX_WAITING_INVITATIONS and not repository.invitation_sync(
        ctx.conn, project_id, invitee
    ):
        raise Conflict(
            f"{username} has {waiting} of your invitations to answer already, the most"
            " one user may have waiting from another; wait until they answer some."
        )

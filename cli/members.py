"""``livestudio invitations`` and ``livestudio members``: project membership from a shell."""

from __future__ import annotations

from cli.remote import session_request
from shared.text import printable


def invitations(server: str | None, action: str | None, project_id: int | None) -> None:
    """List pending invitations, or accept or decline one."""
    if action == "accept":
        _, row = session_request(server, "POST", f"/api/invitations/{project_id}/accept")
        print(f"Joined {printable(row['name'])!r}: your runs on {row['repo_url']} now show there.")
        return
    if action == "decline":
        session_request(server, "DELETE", f"/api/invitations/{project_id}")
        print(f"Declined the invitation to project {project_id}.")
        return
    _, rows = session_request(server, "GET", "/api/invitations")
    if not rows:
        print("No invitations are waiting for you.")
        return
    for row in rows:
        name, url = printable(row["project_name"]), printable(row["repo_url"])
        print(f"{row['project_id']:>6}  {name}  {url}  invited by {row['invited_by'] or '?'}")
    print("Accept with `livestudio invitations accept ID`; decline with `... decline ID`.")


def members(server: str | None, project_id: int, action: str | None, username: str | None) -> None:
    """List a project's members, invite someone, or remove a member."""
    base = f"/api/projects/{project_id}/members"
    if action == "invite":
        session_request(server, "POST", base, {"username": username})
        print(f"Invited {username}; they join once they accept (`livestudio invitations`).")
        return
    if action == "remove":
        session_request(server, "DELETE", f"{base}/{username}")
        print(f"{username} is no longer in project {project_id}.")
        return
    _, found = session_request(server, "GET", base)
    print(f"owner:   {found['owner'] or '(deleted)'}")
    print(f"members: {', '.join(found['members'])}")
    print(f"invited: {', '.join(found['invited']) or '-'}")

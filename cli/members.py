"""``livestudio projects``, ``invitations`` and ``members``: projects and membership from a
shell."""

from __future__ import annotations

import contextlib

from cli.admin import CliError
from cli.remote import session_request
from shared.text import printable


def projects(server: str | None) -> None:
    """List the projects the user is a member of, with the ids other commands take."""
    _, rows = session_request(server, "GET", "/api/projects")
    if not rows:
        print("No projects yet: point DVCLive at this server and they appear here.")
        return
    lines = [
        (
            str(row["id"]),
            printable(row["name"]),
            printable(row["repo_url"])
            + (f" {printable(row['subdir'])}" if row.get("subdir") else ""),
            f"owner {row['owner'] or '-'}",
            f"{row['experiments']} experiment{'' if row['experiments'] == 1 else 's'},"
            f" {row['running']} running",
        )
        for row in rows
    ]
    # Aligned columns, as wide as their longest cell (the names and URLs were ragged).
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    for ident, name, url, owner, counts in lines:
        padded = (c.ljust(w) for c, w in zip((name, url, owner), widths[1:], strict=True))
        print(ident.rjust(widths[0]), *padded, counts, sep="  ")


def project_id(server: str | None, project: str) -> int:
    """A project named by its id or its name (a name two projects share is refused)."""
    _, rows = session_request(server, "GET", "/api/projects")
    none = f"You have no project named {project!r}; `livestudio projects` lists them."
    return _pick([(r["id"], r["name"]) for r in rows], project, none)


def invited_project_id(server: str | None, project: str) -> int:
    """A project one is invited to, named by its id or its name."""
    _, rows = session_request(server, "GET", "/api/invitations")
    none = (
        f"No invitation to a project named {project!r} waits for you;"
        " `livestudio invitations` lists them."
    )
    return _pick([(r["project_id"], r["project_name"]) for r in rows], project, none)


def _pick(rows: list[tuple[int, str]], project: str, none: str) -> int:
    """The id ``project`` names among (id, name) ``rows``: an id, or a name only one has."""
    matches = [number for number, name in rows if name == project]
    if project.isascii() and project.isdigit():
        number = int(project)
        named = [m for m in matches if m != number]
        if not named:
            return number  # an id (one not yours gets the server's 404)
        if any(r == number for r, _ in rows):  # a project 2024 and one named "2024"
            raise CliError(
                f"{project} is the id of one of your projects and the name of another"
                f" ({named[0]}); give that one's id."
            )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(none)
    ids = ", ".join(str(m) for m in matches[:-1]) + f" and {matches[-1]}"
    every = "both" if len(matches) == 2 else "all"
    raise CliError(f"Projects {ids} are {every} named {project!r}; give the id instead.")


def invitations(server: str | None, action: str | None, project: str | None) -> None:
    """List pending invitations, or accept or decline one (``project``: its id or name)."""
    project_id = None if project is None else invited_project_id(server, project)
    if action == "accept":
        _, row = session_request(server, "POST", f"/api/invitations/{project_id}/accept")
        joined, repo = printable(row["name"]), printable(row["repo_url"])
        print(f"Joined {joined!r}: your runs on {repo} now show there.")
        return
    if action == "decline":
        names = {}
        with contextlib.suppress(CliError):  # the name is a nicety; the answer is not
            _, waiting = session_request(server, "GET", "/api/invitations")
            names = {row["project_id"]: printable(row["project_name"]) for row in waiting}
        session_request(server, "DELETE", f"/api/invitations/{project_id}")
        name = names.get(project_id)
        print(f"Declined the invitation to {name!r}." if name else "Declined the invitation.")
        return
    _, rows = session_request(server, "GET", "/api/invitations")
    if not rows:
        print("No invitations are waiting for you.")
        return
    for row in rows:
        name, url = printable(row["project_name"]), printable(row["repo_url"])
        print(f"{row['project_id']:>6}  {name}  {url}  invited by {row['invited_by'] or '?'}")
    print(
        "Accept with `livestudio invitations accept ID`; decline with `... decline ID`"
        " (or the project's name)."
    )


def members(server: str | None, project: str, action: str | None, username: str | None) -> None:
    """List a project's members, invite someone, or remove a member."""
    number = project_id(server, project)
    base = f"/api/projects/{number}/members"
    if action == "invite":
        _, before = session_request(server, "GET", base)
        session_request(server, "POST", base, {"username": username})
        if username in before["invited"]:
            print(f"{username} was invited already: invited again; they join once they accept.")
        else:
            print(f"Invited {username}; they join once they accept (`livestudio invitations`).")
        return
    if action == "remove":
        _, before = session_request(server, "GET", base)
        session_request(server, "DELETE", f"{base}/{username}")
        name = repr(project) if str(number) != project else f"project {number}"
        if username in before["invited"]:  # they never joined: the invitation went
            print(f"Withdrew the invitation of {username} to {name}.")
        else:
            print(f"{username} is no longer a member of {name}.")
        return
    _, found = session_request(server, "GET", base)
    print(f"owner:   {found['owner'] or '(deleted)'}")
    print(f"members: {', '.join(found['members'])}")
    print(f"invited: {', '.join(found['invited']) or '-'}")

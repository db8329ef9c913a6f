"""The ``livestudio`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from backend.settings import Settings, default_db_path, missing_db_hint
from cli import admin, prompts
from cli.admin import CliError, describe
from tui.settings import SettingsError


def _server_settings(args: argparse.Namespace):
    from backend.settings import Settings

    try:
        return Settings.from_env(
            db=getattr(args, "db", None),
            database_url=getattr(args, "database_url", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            stale_after=getattr(args, "stale_after", None),
            redis_url=getattr(args, "redis_url", None),
            ssh_port=getattr(args, "ssh_port", None),
        )
    except ValueError as exc:
        raise CliError(f"{exc}.") from None


def _existing_server_settings(args: argparse.Namespace) -> Settings:
    """The server settings of a command that needs an existing database: a mistyped
    ``--db`` made a new, empty one (and then said there was no such user, or worse, that
    it was migrated)."""
    settings = _server_settings(args)
    if settings.engine == "sqlite" and not settings.db.exists():
        flag = "--database-url" if getattr(args, "database_url", None) else "--db"
        raise CliError(
            f"There is no database at {settings.db}{missing_db_hint(settings.db)}; name it with"
            f" {flag} (`livestudio user"
            " add NAME` or `livestudio serve` makes a new one)."
        )
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from cli.serve import serve

    settings = _server_settings(args)
    workers = args.workers
    if workers is None:
        raw = os.environ.get("LIVESTUDIO_WORKERS", "").strip() or "1"  # empty: unset
        try:
            workers = int(raw)
        except ValueError:
            raise CliError(
                f"LIVESTUDIO_WORKERS must be a whole number of processes, not {raw!r}."
            ) from None
    if workers < 1:
        raise CliError("--workers (LIVESTUDIO_WORKERS) must be at least 1.")
    if workers > 1 and settings.engine == "sqlite":
        raise CliError(
            "SQLite has a single writer, so one process serves it: run one (--workers 1),"
            " or give PostgreSQL and Redis (--database-url postgresql://…, --redis-url"
            " redis://…) for several."
        )
    if workers > 1 and not settings.redis_url:
        raise CliError(
            "Several processes share their live events through Redis: give --redis-url"
            " redis://HOST:6379/0 (or LIVESTUDIO_REDIS_URL)."
        )
    if workers > 1 and settings.ssh_port:
        raise CliError("Serve the TUI over SSH from a single process (--workers 1).")
    if admin.count_users(settings.database) == 0:
        where = f"--db {settings.db}" if settings.engine == "sqlite" else "--database-url URL"
        print(
            f"livestudio: no users yet; create the first one with `livestudio user add NAME"
            f" {where}`.",
            file=sys.stderr,
        )
    serve(settings, workers=workers)
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return prompts.password_from_stdin()
    first = prompts.password_from_terminal()
    if prompts.password_from_terminal("Repeat password: ") != first:
        raise CliError("The passwords do not match; try again.")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a user."""
    settings = _server_settings(args)
    if admin.user_exists(settings.database, args.name):  # said before a password is asked
        raise CliError(f"A user named {args.name!r} already exists (usernames ignore case).")
    is_admin = admin.add_user(settings.database, args.name, _read_password(args), args.admin)
    role = "admin" if is_admin else "user"
    print(f"Created {role} {args.name!r}. Next: `livestudio token create {args.name}`.")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    """List every account."""
    settings = _existing_server_settings(args)
    found = admin.users(settings.database, settings.session_days)
    for user in found:
        role = "admin" if user.is_admin else "user"
        state = "  LOCKED" if user.locked else ""
        created = datetime.fromtimestamp(user.created_at, UTC).strftime("%Y-%m-%d")
        print(
            f"{user.username}  {role}  created {created}  owns {user.projects_owned} projects"
            f"  {user.tokens} tokens  {user.sessions} logins{state}"
        )
    if not found:
        print("No users yet; create the first one with `livestudio user add NAME`.")
    return 0


def cmd_user_password(args: argparse.Namespace) -> int:
    """Set a user's password as an admin (a forgotten one)."""
    settings = _existing_server_settings(args)
    if not admin.user_exists(settings.database, args.name):  # said before a password is asked
        raise CliError(f"There is no user named {args.name!r}; see `livestudio user list`.")
    name = admin.reset_password(settings.database, args.name, _read_password(args))
    print(
        f"Set a new password for {name}; their logins (TUI, SSH) have ended; any tokens and"
        " SSH keys they have still work (`livestudio user lock` ends those too)."
    )
    return 0


def cmd_user_lock(args: argparse.Namespace) -> int:
    """Lock someone out (they left the team): no login, token or SSH key lets them in."""
    settings = _existing_server_settings(args)
    name = admin.reset_password(settings.database, args.name, None)
    print(
        f"Locked {name} out: their logins ended, their tokens and SSH keys are deleted,"
        " and no password works; their projects and runs stay (`livestudio project owner ID"
        f" NAME` hands a project to someone else). `livestudio user password {name}`"
        " lets them in again."
    )
    if not any(
        u.is_admin and not u.locked for u in admin.users(settings.database, settings.session_days)
    ):
        print(
            "Note: no admin can log in now; `livestudio user add NAME --admin` makes one (or"
            " `livestudio user password NAME` lets a locked admin in again)."
        )
    return 0


def cmd_user_add_key(args: argparse.Namespace) -> int:
    """Register an SSH public key for a user."""
    settings = _existing_server_settings(args)
    key = admin.add_ssh_key(settings.database, args.name, args.key_file)
    comment = key.comment or "no comment"
    print(f"Added {key.key_type} key {key.fingerprint} ({comment}) for {args.name}.")
    return 0


def cmd_user_keys(args: argparse.Namespace) -> int:
    """List a user's SSH public keys."""
    settings = _existing_server_settings(args)
    keys = admin.ssh_keys_of(settings.database, args.name)
    for key in keys:
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
        if not key.confirmed:
            used = "never (unconfirmed: its first `ssh -t NAME@host` asks for the password)"
        added = key.created_at.strftime("%Y-%m-%d %H:%M")
        print(
            f"{key.fingerprint}  {key.key_type}  {key.comment or '-'}  added {added}  used {used}"
        )
    if not keys:
        print(f"{args.name} has no SSH keys; add one with `livestudio user add-key`.")
    return 0


def cmd_user_remove_key(args: argparse.Namespace) -> int:
    """Remove one of a user's SSH public keys."""
    settings = _existing_server_settings(args)
    admin.remove_ssh_key(settings.database, args.name, args.fingerprint)
    print(f"Removed {args.fingerprint} from {args.name}'s keys.")
    return 0


def cmd_ssh_fingerprint(args: argparse.Namespace) -> int:
    """Print the SSH host key's fingerprint (made on first use)."""
    from backend.settings import ssh_host_key_path
    from backend.ssh.server import fingerprint

    settings = _server_settings(args)
    if settings.engine == "sqlite" and not settings.db.exists():
        # The key lives beside the database: made here, it would not be the server's.
        raise CliError(
            f"There is no livestudio database at {settings.db}: pass the --db your server"
            " uses (its host key is kept beside it)."
        )
    if not ssh_host_key_path(settings.db).exists():
        raise CliError(
            f"There is no SSH host key at {ssh_host_key_path(settings.db)} yet: `serve"
            " --ssh-port` makes it at its first start (run this where the server runs, with"
            " its --db or --database-url)."
        )
    print(fingerprint(settings.db))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    """Print a new profile token for a user."""
    settings = _existing_server_settings(args)
    new = admin.create_token(settings.database, args.name)
    print(new.token)
    print(
        f"This is {args.name}'s profile token; it is shown only once and replaces any"
        " previous one. Use it as DVC_STUDIO_TOKEN.",
        file=sys.stderr,
    )
    return 0


def cmd_project_add(args: argparse.Namespace) -> int:
    """Create a project."""
    settings = _existing_server_settings(args)
    row = admin.add_project(settings.database, args.name, args.repo_url, args.subdir, args.owner)
    print(f"Created project {row.name!r} (id {row.id}) for {row.repo_url}.")
    return 0


def cmd_project_owner(args: argparse.Namespace) -> int:
    """Hand a project to another owner."""
    settings = _existing_server_settings(args)
    row = admin.transfer_project(settings.database, args.project_id, args.name)
    print(f"{row.owner} owns project {row.name!r} (id {row.id}) now.")
    return 0


def _need_terminal() -> None:
    # Without one Textual draws escape codes into a file or a pipe until it is killed.
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError(
            "The terminal UI needs a terminal, and this one's input or output is a file or"
            " a pipe: run it in a terminal (over SSH: ssh -t)."
        )


def cmd_tui(args: argparse.Namespace) -> int:
    """Open the terminal UI."""
    from tui.app import build_app
    from tui.settings import TuiSettings

    settings = TuiSettings.from_env(server=args.server)  # a bad URL is told first
    _need_terminal()
    settings.open_project = args.project
    app = build_app(settings)
    app.run()
    return app.return_code or 0  # (1 when it failed: a script running it can tell)


def cmd_login(args: argparse.Namespace) -> int:
    """Log in from the shell and keep the session for the TUI."""
    from cli.login import login

    login(args.server, args.username, args.password_stdin)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo."""
    from cli.demo import run_demo
    from cli.serve import check_port

    if args.port:
        # Taken: one line, before the TUI takes the screen.
        check_port("127.0.0.1", args.port, "another --port (or none: any free one)")
    _need_terminal()
    return run_demo(args.port)


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a device login."""
    from cli.approve import approve

    name = approve(args.code, args.server, args.yes)
    print(f"Approved: the waiting client receives the access token {name!r}.")
    return 0


def cmd_invitations(args: argparse.Namespace) -> int:
    """List, accept or decline invitations to projects."""
    from cli.members import invitations

    if args.action in {"accept", "decline"} and args.project_id is None:
        raise CliError(f"Say which project: `livestudio invitations {args.action} ID`.")
    invitations(args.server, args.action, args.project_id)
    return 0


def cmd_projects(args: argparse.Namespace) -> int:
    """List my projects with their ids."""
    from cli.members import projects

    projects(args.server)
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    """List a project's members, invite someone or remove a member."""
    from cli.members import members

    if args.action in {"invite", "remove"} and not args.username:
        raise CliError(f"Say whom: `livestudio members {args.project} {args.action} NAME`.")
    members(args.server, args.project, args.action, args.username)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run a training command and report its failure."""
    from cli.run import run

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return run(command, args.server)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations (the server also does at start)."""
    settings = _existing_server_settings(args)
    before, after = admin.migrate_db(settings.database)
    if before == after:
        print(f"{describe(settings.database)} is at the current schema (version {after}).")
    else:
        print(f"Migrated {describe(settings.database)} from schema version {before} to {after}.")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    """Copy the database to a new file, consistently, even while the server runs."""
    settings = _server_settings(args)
    if settings.engine != "sqlite":
        raise CliError(
            "db backup copies a SQLite file; back up PostgreSQL with its own tools"
            " (pg_dump, or continuous archiving)."
        )
    from backend.db.migrations import MIGRATIONS

    size, version = admin.backup_db(settings.db, args.dest)
    known = max(v for v, _ in MIGRATIONS)
    # A backup only reads, so it is made even of a database a newer livestudio migrated
    # (the one thing worth doing before going back a version); its copy needs that one.
    serve = (
        f"serve it with `livestudio serve --db {args.dest}`"
        if version <= known
        else f"newer than this livestudio knows ({known}): serve it with a livestudio at least"
        " as new as the one that migrated it"
    )
    print(
        f"Backed up {settings.db} to {args.dest} ({size / 1e6:.1f} MB, schema version"
        f" {version}); {serve}."
    )
    return 0


def _database_arg(value: str) -> Path | str:
    from backend.settings import check_postgres_url, is_postgres_url, sqlite_path

    try:
        if is_postgres_url(value):
            check_postgres_url(value)
            return value
        return sqlite_path(value) if "://" in value else Path(value).expanduser()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_db_copy(args: argparse.Namespace) -> int:
    """Copy a whole database to another, e.g. a team's SQLite history into PostgreSQL."""
    counts = admin.copy_db(args.source, args.dest, args.replace)
    serve = f"--db {args.dest}" if isinstance(args.dest, Path) else "--database-url URL"
    print(
        f"Copied {sum(counts.values())} rows in {len(counts)} tables; serve it with"
        f" `livestudio serve {serve}` (again later with --replace: an exact copy anew)."
    )
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("livestudio")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse, saying what is wrong in one line (its usage block buried the reason)."""

    def error(self, message: str) -> NoReturn:
        # An unknown option after a command is found by the top parser, not the command's.
        where = "livestudio COMMAND" if self.prog == "livestudio" else self.prog
        if "invalid choice" in message and any(a.startswith("--") for a in sys.argv[2:3]):
            # `livestudio user --db X list`: the options belong after the action.
            message += (
                f"; give the options after the action (`livestudio {sys.argv[1]} ACTION"
                f" {sys.argv[2]} …`)"
            )
        self.exit(2, f"livestudio: {message} (`{where} --help` lists the options).\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command (sub-parsers are of the same class)."""
    parser = _Parser(
        prog="livestudio",
        description="Self-hosted live experiment tracking for DVCLive.",
    )
    parser.add_argument("--version", action="version", version=f"livestudio {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--db",
            type=Path,
            help=f"SQLite file (env LIVESTUDIO_DB; default {default_db_path()})",
        )
        p.add_argument(
            "--database-url",
            help="the database as a URL: sqlite:///PATH or postgresql://USER@HOST/NAME"
            " (env LIVESTUDIO_DATABASE_URL)",
        )
        return p

    serve = with_db(sub.add_parser("serve", help="run the server"))
    serve.add_argument(
        "--host",
        help=f"interface to listen on (env LIVESTUDIO_HOST; default {Settings.host}, this"
        " machine only: 0.0.0.0 for others)",
    )
    serve.add_argument(
        "--port", type=int, help=f"TCP port (env LIVESTUDIO_PORT; default {Settings.port})"
    )
    serve.add_argument(
        "--ssh-port", type=int, help="also serve the TUI over SSH here (env LIVESTUDIO_SSH_PORT)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes (SQLite: 1; several need PostgreSQL and Redis; env"
        " LIVESTUDIO_WORKERS, default 1)",
    )
    serve.add_argument(
        "--redis-url",
        help="Redis for fan-out between processes, redis://HOST:6379/0 (env LIVESTUDIO_REDIS_URL)",
    )
    serve.add_argument(
        "--stale-after",
        type=float,
        help="seconds of silence before a run is Stopped (env LIVESTUDIO_STALE_AFTER;"
        f" default {Settings.stale_after:g})",
    )
    serve.set_defaults(func=cmd_serve)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="action", metavar="ACTION"
    )
    user_add = with_db(user.add_parser("add", help="create a user"))
    user_add.add_argument("name")
    user_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    user_add.add_argument("--admin", action="store_true", help="make the user an admin")
    user_add.set_defaults(func=cmd_user_add)
    user_list = with_db(user.add_parser("list", help="list every account"))
    user_list.set_defaults(func=cmd_user_list)
    password = with_db(user.add_parser("password", help="set NAME's password (a forgotten one)"))
    password.add_argument("name")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    password.set_defaults(func=cmd_user_password)
    lock = with_db(user.add_parser("lock", help="lock NAME out (no login, token or SSH key)"))
    lock.add_argument("name")
    lock.set_defaults(func=cmd_user_lock)
    add_key = with_db(user.add_parser("add-key", help="let a public key log NAME in over SSH"))
    add_key.add_argument("name")
    add_key.add_argument("key_file", type=Path, help="the public key, e.g. ~/.ssh/id_ed25519.pub")
    add_key.set_defaults(func=cmd_user_add_key)
    keys = with_db(user.add_parser("keys", help="list NAME's SSH public keys"))
    keys.add_argument("name")
    keys.set_defaults(func=cmd_user_keys)
    remove_key = with_db(user.add_parser("remove-key", help="remove one of NAME's SSH keys"))
    remove_key.add_argument("name")
    remove_key.add_argument("fingerprint", help="SHA256:… as `livestudio user keys` shows")
    remove_key.set_defaults(func=cmd_user_remove_key)
    fingerprint = with_db(
        sub.add_parser("ssh-fingerprint", help="print the SSH host key's fingerprint")
    )
    fingerprint.set_defaults(func=cmd_ssh_fingerprint)

    token = sub.add_parser("token", help="manage access tokens").add_subparsers(
        dest="action", metavar="ACTION"
    )
    token_create = with_db(token.add_parser("create", help="print a new profile token for a user"))
    token_create.add_argument("name", help="the user")
    token_create.set_defaults(func=cmd_token_create)

    database = sub.add_parser("db", help="look after the database").add_subparsers(
        dest="action", metavar="ACTION"
    )
    db_migrate = with_db(database.add_parser("migrate", help="bring it to the current schema"))
    db_migrate.set_defaults(func=cmd_db_migrate)
    db_backup = with_db(
        database.add_parser("backup", help="copy it to a new file (safe while the server runs)")
    )
    db_backup.add_argument("dest", type=Path, help="the new file")
    db_backup.set_defaults(func=cmd_db_backup)
    db_copy = database.add_parser(
        "copy", help="copy every table to another database (SQLite to PostgreSQL, say)"
    )
    db_copy.add_argument(
        "--from",
        dest="source",
        required=True,
        type=_database_arg,
        help="the database to copy: sqlite:///PATH, a file, or postgresql://…",
    )
    db_copy.add_argument(
        "--to",
        dest="dest",
        required=True,
        type=_database_arg,
        help="where to copy it: postgresql://… or sqlite:///PATH (made and migrated if new)",
    )
    db_copy.add_argument(
        "--replace",
        action="store_true",
        help="the destination holds data already: replace it all with the copy",
    )
    db_copy.set_defaults(func=cmd_db_copy)

    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="action", metavar="ACTION"
    )
    project_add = with_db(project.add_parser("add", help="create a project"))
    project_add.add_argument("name")
    project_add.add_argument("repo_url")
    project_add.add_argument("--subdir", help="monorepo sub-project path")
    project_add.add_argument("--owner", help="owning user (default: the only user)")
    project_add.set_defaults(func=cmd_project_add)
    owner = with_db(project.add_parser("owner", help="hand a project to another owner"))
    owner.add_argument("project_id", type=int, metavar="ID")
    owner.add_argument("name", help="the new owner (made a member if not one)")
    owner.set_defaults(func=cmd_project_owner)
    tui = sub.add_parser("tui", help="open the terminal UI (the default command)")
    tui.add_argument("--server", help="server URL (env LIVESTUDIO_SERVER)")
    tui.add_argument("--project", help="open this project (name or id) at once")
    tui.set_defaults(func=cmd_tui)

    login = sub.add_parser("login", help="log in and keep the session for the TUI")
    login.add_argument("--server", help="server URL (env LIVESTUDIO_SERVER)")
    login.add_argument("--username", "-u", help="username (asked when missing)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.set_defaults(func=cmd_login)

    approve = sub.add_parser("approve", help="approve a device login (dvc studio login)")
    approve.add_argument("code", help="the code DVC printed, e.g. BCDF-GHJK")
    approve.add_argument("--server", help="server URL (env LIVESTUDIO_SERVER)")
    approve.add_argument(
        "--yes", "-y", action="store_true", help="approve without asking to confirm"
    )
    approve.set_defaults(func=cmd_approve)

    invitations = sub.add_parser(
        "invitations", help="list, accept or decline invitations to projects"
    )
    invitations.add_argument("action", nargs="?", choices=["accept", "decline"])
    invitations.add_argument(
        "project_id", nargs="?", metavar="PROJECT", help="the project's id or name"
    )
    invitations.add_argument("--server", help="server URL (env LIVESTUDIO_SERVER)")
    invitations.set_defaults(func=cmd_invitations)

    projects = sub.add_parser("projects", help="list my projects, with their ids")
    projects.add_argument("--server", help="server URL (env LIVESTUDIO_SERVER)")
    projects.set_defaults(func=cmd_projects)

    members = sub.add_parser(
        "members", help="list a project's members; invite or remove one (owner)"
    )
    members.add_argument("project", help="the project's id, or its name")
    members.add_argument("action", nargs="?", choices=["invite", "remove"])
    members.add_argument("username", nargs="?")
    members.add_argument("--server", help="server URL (env LIVESTUDIO_SERVER)")
    members.set_defaults(func=cmd_members)

    run = sub.add_parser(
        "run", help="run a training command; report a crash or kill as a Failed experiment"
    )
    run.add_argument(
        "--server", help="server URL (else DVC_STUDIO_URL, LIVESTUDIO_SERVER, DVC's config)"
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="a temporary server with simulated runs, and the TUI on it")
    demo.add_argument(
        "--port",
        type=int,
        default=0,
        help="the demo server's port on 127.0.0.1 (default: any free one)",
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def with_default_command(argv: Sequence[str]) -> list[str]:
    """``livestudio`` and ``livestudio --server URL`` open the TUI, as ``livestudio tui``.

    ``-h``, ``--help`` and ``--version`` are the program's own."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["tui", *argv]
    return list(argv)


def _actions_of(parser: argparse.ArgumentParser, group: str) -> list[str]:
    """The actions of a command made of several (``user``: add, list…)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and group in action.choices:
            for inner in action.choices[group]._actions:
                if isinstance(inner, argparse._SubParsersAction):
                    return list(inner.choices)
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livestudio`` script."""
    parser = build_parser()
    args = parser.parse_args(with_default_command(sys.argv[1:] if argv is None else argv))
    func = getattr(args, "func", None)
    if func is None:
        group = getattr(args, "command", None)
        if group:  # `livestudio user`: which of its actions, in one line
            choices = _actions_of(parser, group)
            print(
                f"livestudio: say what to do: `livestudio {group} ACTION`, ACTION one of"
                f" {', '.join(choices)} (`livestudio {group} --help` lists them).",
                file=sys.stderr,
            )
            return 2
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except (CliError, SettingsError) as exc:
        print(f"livestudio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Bootstrap commands that work on the database directly: users, tokens, projects."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TypeVar

from backend.db import repository
from backend.db.connection import connect_sync
from backend.db.migrations import migrate
from backend.db.writer import WriteContext, run_in_transaction
from backend.services import accounts, projects, ssh_keys
from backend.services.errors import DomainError
from shared.api import NewToken, ProjectRow, SshKeyInfo

T = TypeVar("T")


class CliError(Exception):
    """A one-sentence error for stderr."""


def _run(db: Path, job: Callable[[WriteContext], T]) -> T:
    try:
        with closing(connect_sync(db)) as conn:
            migrate(conn)
            (outcome,), _ = run_in_transaction(conn, [job])
    except sqlite3.Error as exc:
        raise CliError(f"Cannot use the database {db}: {exc}.") from None
    except OSError as exc:
        raise CliError(f"Cannot use the database {db}: {exc.strerror or exc}.") from None
    if isinstance(outcome, DomainError):
        raise CliError(outcome.detail)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def count_users(db: Path) -> int:
    """How many users the database has (creating and migrating it if needed)."""
    return _run(db, lambda ctx: repository.count_users(ctx.conn))


def add_user(db: Path, username: str, password: str, admin: bool) -> bool:
    """Create a user; the first user is always an admin. Returns whether they are admin."""
    try:
        accounts.check_new_user(username, password)
    except DomainError as exc:
        raise CliError(exc.detail) from None
    password_hash = accounts.hash_password(password)

    def job(ctx: WriteContext) -> bool:
        is_admin = admin or repository.count_users(ctx.conn) == 0
        accounts.create_user_job(username, password_hash, is_admin)(ctx)
        return is_admin

    return _run(db, job)


def _user_id(ctx: WriteContext, username: str) -> int:
    user = repository.user_by_name_sync(ctx.conn, username)
    if user is None:
        raise CliError(
            f"There is no user named {username!r}; create it with `livestudio user add`."
        )
    return user.id


def create_token(db: Path, username: str) -> NewToken:
    """Generate (or regenerate) a user's profile token."""
    return _run(db, lambda ctx: accounts.profile_token_job(_user_id(ctx, username))(ctx))


def add_project(
    db: Path, name: str, repo_url: str, subdir: str | None, owner: str | None
) -> ProjectRow:
    """Create a project owned by ``owner`` (or the only user)."""

    def job(ctx: WriteContext) -> ProjectRow:
        names = repository.all_usernames(ctx.conn)
        chosen = owner
        if chosen is None:
            if len(names) != 1:
                raise CliError(
                    "Say which user owns the project with --owner NAME."
                    if names
                    else "There are no users yet; create one with `livestudio user add NAME`."
                )
            chosen = names[0]
        try:
            create = projects.create_job(_user_id(ctx, chosen), name, repo_url, subdir)
        except DomainError as exc:
            raise CliError(exc.detail) from None
        return create(ctx)

    return _run(db, job)


def add_ssh_key(db: Path, username: str, key_file: Path) -> SshKeyInfo:
    """Register a public key (a .pub file) for a user."""
    try:
        text = key_file.read_text()
    except OSError as exc:
        raise CliError(f"Cannot read {key_file}: {exc.strerror or exc}.") from None
    try:
        ssh_keys.parse_public_key(text)
    except DomainError as exc:
        raise CliError(exc.detail) from None
    return _run(db, lambda ctx: ssh_keys.add_key_job(_user_id(ctx, username), text)(ctx))


def ssh_keys_of(db: Path, username: str) -> list[SshKeyInfo]:
    """A user's keys."""
    return _run(db, lambda ctx: repository.ssh_keys_sync(ctx.conn, _user_id(ctx, username)))


def remove_ssh_key(db: Path, username: str, fingerprint: str) -> None:
    """Remove a user's key by its fingerprint."""
    _run(db, lambda ctx: ssh_keys.remove_key_job(_user_id(ctx, username), fingerprint)(ctx))


def migrate_db(db: Path) -> tuple[int, int]:
    """Bring a database to the current schema; (version before, version after)."""
    from backend.db.maintenance import migrate_file

    try:
        return migrate_file(db)
    except (sqlite3.Error, OSError) as exc:
        raise CliError(f"Cannot migrate {db}: {exc}.") from None


def backup_db(db: Path, dest: Path) -> tuple[int, int]:
    """Copy a database (also while the server runs) to a new file; (bytes, schema version)."""
    from backend.db.maintenance import backup_file

    if not db.exists():
        raise CliError(f"There is no database at {db}; name it with --db.")
    if dest.exists():
        raise CliError(f"{dest} exists already; back up to a new file.")
    if not dest.parent.is_dir():
        raise CliError(f"The folder {dest.parent} does not exist; create it first.")
    try:
        return backup_file(db, dest)
    except (sqlite3.Error, OSError) as exc:
        dest.unlink(missing_ok=True)
        raise CliError(f"Cannot back up {db} to {dest}: {exc}.") from None

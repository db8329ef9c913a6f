"""Bootstrap commands that work on the database directly: users, tokens, projects."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TypeVar, cast

from backend.db import repository
from backend.db.connection import Target, connect_sync, database_errors, describe, scrub
from backend.db.migrations import migrate
from backend.db.writer import WriteContext, run_in_transaction
from backend.services import accounts, projects, ssh_keys
from backend.services.errors import DomainError
from backend.settings import missing_db_hint
from shared.api import NewToken, ProjectRow, SshKeyInfo

T = TypeVar("T")


class CliError(Exception):
    """A one-sentence error for stderr."""


def _run(db: Target, job: Callable[[WriteContext], T]) -> T:
    try:
        with closing(connect_sync(db)) as conn:
            migrate(conn)
            (outcome,), _ = run_in_transaction(conn, [job])
    except database_errors() as exc:
        raise CliError(f"Cannot use the database {describe(db)}: {_reason(exc, db)}.") from None
    except OSError as exc:
        raise CliError(f"Cannot use the database {describe(db)}: {exc.strerror or exc}.") from None
    if isinstance(outcome, DomainError):
        raise CliError(outcome.detail)
    if isinstance(outcome, database_errors()):
        raise CliError(f"Cannot use the database {describe(db)}: {_reason(outcome, db)}.")
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _reason(exc: BaseException, *targets: Target) -> str:
    """The first line of a database error (PostgreSQL's add hints on further lines),
    without any password of the databases involved (libpq may quote one back)."""
    text = str(exc).strip()
    reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
    for target in targets:
        reason = scrub(reason, target)
    return reason


def count_users(db: Target) -> int:
    """How many users the database has (creating and migrating it if needed)."""
    return _run(db, lambda ctx: repository.count_users(ctx.conn))


def add_user(db: Target, username: str, password: str, admin: bool) -> bool:
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


def users(db: Target, session_days: float) -> list[repository.UserSummary]:
    """Every account, with its logins that have not expired."""
    after = time.time() - session_days * 86400
    return _run(db, lambda ctx: repository.user_summaries(ctx.conn, after))


def user_exists(db: Target, username: str) -> bool:
    """Whether the name is taken (names ignore case)."""
    return _run(db, lambda ctx: repository.user_by_name_sync(ctx.conn, username) is not None)


def reset_password(db: Target, username: str, password: str | None) -> str:
    """Set a user's password (None: lock the account); their logins end. Returns the
    account's name as stored (names ignore case)."""
    new_hash = None
    if password is not None:
        try:
            accounts.check_password(password)
        except DomainError as exc:
            raise CliError(exc.detail) from None
        new_hash = accounts.hash_password(password)

    def job(ctx: WriteContext) -> str:
        user_id = _user_id(ctx, username)
        accounts.reset_password_job(user_id, new_hash)(ctx)
        found = repository.user_by_name_sync(ctx.conn, username)
        return found.username if found is not None else username

    return _run(db, job)


def _user_id(ctx: WriteContext, username: str) -> int:
    user = repository.user_by_name_sync(ctx.conn, username)
    if user is None:
        raise CliError(
            f"There is no user named {username!r}; create it with `livestudio user add`."
        )
    return user.id


def create_token(db: Target, username: str) -> NewToken:
    """Generate (or regenerate) a user's profile token."""
    return _run(db, lambda ctx: accounts.profile_token_job(_user_id(ctx, username))(ctx))


def create_client_token(db: Target, username: str, name: str, scopes: frozenset[str]) -> NewToken:
    """A named client token of the user (as a device login makes one)."""
    return _run(
        db, lambda ctx: accounts.client_token(ctx.conn, _user_id(ctx, username), name, scopes)
    )


def add_project(
    db: Target, name: str, repo_url: str, subdir: str | None, owner: str | None
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


def transfer_project(db: Target, project_id: int, username: str) -> ProjectRow:
    """Make ``username`` the owner of a project."""
    return _run(db, lambda ctx: projects.transfer_job(project_id, _user_id(ctx, username))(ctx))


MAX_KEY_FILE = 64 << 10
"""A .pub file holds one line of a few hundred bytes (an RSA key of 16,384 bits: ~2.8 KB)."""


def add_ssh_key(db: Target, username: str, key_file: Path) -> SshKeyInfo:
    """Register a public key (a .pub file) for a user."""
    try:
        with key_file.open("rb") as file:
            raw = file.read(MAX_KEY_FILE + 1)  # (/dev/zero, a disk image: not all of it)
    except OSError as exc:
        raise CliError(f"Cannot read {key_file}: {exc.strerror or exc}.") from None
    try:
        if len(raw) > MAX_KEY_FILE:
            raise ValueError
        text = raw.decode()
    except ValueError:  # UnicodeDecodeError included
        raise CliError(
            f"{key_file} is no public key file: give the .pub file, one line starting with"
            " ssh-ed25519, ssh-rsa or ecdsa-sha2-…."
        ) from None
    try:
        ssh_keys.parse_public_key(text)
    except DomainError as exc:
        raise CliError(exc.detail) from None
    return _run(
        db, lambda ctx: ssh_keys.add_key_job(_user_id(ctx, username), text, confirmed=True)(ctx)
    )


def ssh_keys_of(db: Target, username: str) -> list[SshKeyInfo]:
    """A user's keys."""
    return _run(db, lambda ctx: repository.ssh_keys_sync(ctx.conn, _user_id(ctx, username)))


def remove_ssh_key(db: Target, username: str, fingerprint: str) -> None:
    """Remove a user's key by its fingerprint."""
    _run(
        db,
        lambda ctx: ssh_keys.remove_key_job(_user_id(ctx, username), fingerprint, username)(ctx),
    )


def migrate_db(db: Target) -> tuple[int, int]:
    """Bring a database to the current schema; (version before, version after)."""
    from backend.db.maintenance import migrate_file

    try:
        return migrate_file(db)
    except database_errors(OSError) as exc:
        raise CliError(f"Cannot migrate {describe(db)}: {_reason(exc, db)}.") from None


def copy_db(source: Target, dest: Target, replace: bool) -> dict[str, int]:
    """Copy every table from one database to another (see ``maintenance.copy``)."""
    from backend.db.maintenance import NotEmpty, copy

    if describe(source) == describe(dest):
        raise CliError("--from and --to name the same database; copy to another one.")
    if isinstance(source, Path) and not source.exists():
        raise CliError(f"There is no database at {source}{missing_db_hint(source)}; check --from.")
    started = False

    def progress(table: str, rows: int) -> None:
        nonlocal started
        if not started:  # only once it copies: a refusal is the one line said
            print(f"Copying {describe(source)} to {describe(dest)}:", flush=True)
            started = True
        print(f"  {table}: {rows} rows", flush=True)

    new_file = isinstance(dest, Path) and not dest.exists()
    try:
        try:
            return copy(source, dest, progress, replace=replace)
        except BaseException:
            if new_file:  # "nothing was written": nor an empty file left behind
                _remove_database_files(cast(Path, dest))
            raise
    except NotEmpty:
        raise CliError(
            f"{describe(dest)} already holds users or experiments; copy into an empty"
            " database, or add --replace to make it an exact copy (its contents are lost)."
        ) from None
    except database_errors(OSError) as exc:
        raise CliError(
            f"Cannot copy {describe(source)} to {describe(dest)}: {_reason(exc, source, dest)}"
            " (nothing was written; fix that and run it again)."
        ) from None


def backup_db(db: Path, dest: Path) -> tuple[int, int]:
    """Copy a database (also while the server runs) to a new file; (bytes, schema version)."""
    from backend.db.maintenance import backup_file

    if not db.exists():
        raise CliError(f"There is no database at {db}{missing_db_hint(db)}; name it with --db.")
    if dest.exists():
        raise CliError(f"{dest} exists already; back up to a new file.")
    if not dest.parent.is_dir():
        raise CliError(f"The folder {dest.parent} does not exist; create it first.")
    try:
        return backup_file(db, dest)
    except (sqlite3.Error, OSError) as exc:
        _remove_database_files(dest)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"Cannot back up {db} to {dest}: {reason}.") from None


SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def _remove_database_files(path: Path) -> None:
    """Remove a database file this command created, with the journal SQLite left beside it
    (a full disk left a `-journal` behind), as far as the file system lets it. Behind a
    link that pointed nowhere, the file made is the link's target: it goes, the link stays
    (as the user made it)."""
    target = path.resolve() if path.is_symlink() else path
    leftovers = [target]
    for base in {target, path}:
        leftovers += [base.with_name(base.name + end) for end in SQLITE_SIDE_FILES]
    for leftover in leftovers:
        with contextlib.suppress(OSError):  # a read-only destination: nothing was made
            leftover.unlink(missing_ok=True)

"""Public keys that log a user in to the TUI served over SSH (``livestudio serve --ssh-port``)."""

from __future__ import annotations

from collections.abc import Callable

from backend.db import repository
from backend.db.connection import duplicate_errors
from backend.db.writer import WriteContext
from backend.services.errors import Conflict, InvalidInput, NotFound
from shared.api import SshKeyInfo
from shared.text import UNSAFE


def parse_public_key(text: str) -> tuple[str, str, str]:
    """(fingerprint, the key as one OpenSSH line, comment) of a pasted public key."""
    import asyncssh  # ~0.1 s to import: paid only when a key is actually added

    line = text.strip()
    try:
        key = asyncssh.import_public_key(line)
    except (asyncssh.KeyImportError, ValueError, TypeError):
        raise InvalidInput(
            "That is not an SSH public key; paste one line of a .pub file (ssh-ed25519 AAAA…)."
        ) from None
    comment = key.get_comment() or ""
    comment = UNSAFE.sub("", comment)[:200]
    openssh = key.export_public_key("openssh").decode().strip().split(" ")
    return key.get_fingerprint("sha256"), " ".join(openssh[:2]), comment


def add_key_job(user_id: int, text: str) -> Callable[[WriteContext], SshKeyInfo]:
    """Add a key to the user; a key belongs to one user only."""
    fingerprint, public_key, comment = parse_public_key(text)

    def job(ctx: WriteContext) -> SshKeyInfo:
        try:
            return repository.insert_ssh_key(ctx.conn, user_id, fingerprint, public_key, comment)
        except duplicate_errors():
            raise Conflict(
                f"The key {fingerprint} is already registered. If it is not in your key list,"
                " someone else registered your public key: it would log you in as them; ask"
                " an admin to remove it, or use another key."
            ) from None

    return job


def remove_key_job(user_id: int, fingerprint: str) -> Callable[[WriteContext], None]:
    """Remove one of the user's keys by its fingerprint (``SHA256:…``)."""

    def job(ctx: WriteContext) -> None:
        if not repository.delete_ssh_key(ctx.conn, user_id, fingerprint.strip()):
            raise NotFound(f"You have no SSH key with the fingerprint {fingerprint.strip()}.")

    return job


def remove_key_by_id_job(user_id: int, key_id: int) -> Callable[[WriteContext], None]:
    """Remove one of the user's keys by its id (the API and the TUI)."""

    def job(ctx: WriteContext) -> None:
        if not repository.delete_ssh_key_by_id(ctx.conn, user_id, key_id):
            raise NotFound(f"You have no SSH key with id {key_id}.")

    return job

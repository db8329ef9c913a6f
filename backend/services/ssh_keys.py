"""Public keys that log a user in to the TUI served over SSH (``livestudio serve --ssh-port``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from backend.db import repository
from backend.db.connection import duplicate_errors
from backend.db.writer import WriteContext
from backend.services import accounts
from backend.services.errors import Conflict, InvalidInput, NotFound
from shared.api import SshKeyInfo
from shared.text import UNSAFE


def parse_public_key(text: str) -> tuple[str, str, str]:
    """(fingerprint, the key as one OpenSSH line, comment) of a pasted public key."""
    import asyncssh  # ~0.1 s to import: paid only when a key is actually added

    line = text.strip()
    if "PRIVATE KEY" in line:  # asyncssh would take the public half of it
        raise InvalidInput(
            "That is a private key: keep it to yourself, and give the public one (the .pub"
            " file, a line like ssh-ed25519 AAAA…)."
        )
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


def add_key_job(
    user_id: int, text: str, confirmed: bool = False, session_id: int | None = None
) -> Callable[[WriteContext], SshKeyInfo]:
    """Add a key to the user.

    A key a user adds (``confirmed`` False) is only their claim until its holder proves it
    theirs: its first SSH session, as this user, asks for their password. Several accounts
    may claim one key (pasting someone's public key into your account neither logs them
    in as you nor stops them adding it); the first to prove it keeps it, the other claims
    go. ``confirmed``: an admin adds it (``livestudio user add-key``), vouching for it.
    """
    fingerprint, public_key, comment = parse_public_key(text)

    def job(ctx: WriteContext) -> SshKeyInfo:
        accounts.check_still_logged_in(ctx, session_id)
        claims = dict(repository.ssh_key_claims(ctx.conn, fingerprint))
        if user_id in claims:
            # An admin vouches for a key the user claims already: it is proven now.
            if not (
                confirmed
                and repository.claim_ssh_key(
                    ctx.conn, user_id, fingerprint, time.time(), used=False
                )
            ):
                raise Conflict(f"The key {fingerprint} is already in the key list.")
            return next(
                k
                for k in repository.ssh_keys_sync(ctx.conn, user_id)
                if k.fingerprint == fingerprint
            )
        if any(claims.values()):
            raise Conflict(
                f"The key {fingerprint} is already registered to another account (added"
                " by an admin, or proven by logging in with it); use another key, or remove"
                " it from that account first."
            )
        try:
            added = repository.insert_ssh_key(
                ctx.conn, user_id, fingerprint, public_key, comment, confirmed
            )
        except duplicate_errors():  # proven by someone else in between
            raise Conflict(f"The key {fingerprint} is already registered.") from None
        if confirmed:
            repository.drop_other_claims(ctx.conn, user_id, fingerprint)
        return added

    return job


def remove_key_job(
    user_id: int, fingerprint: str, username: str | None = None
) -> Callable[[WriteContext], None]:
    """Remove one of the user's keys by its fingerprint (``SHA256:…``); ``username``:
    an admin removes it (the refusal names the user instead of "you")."""

    def job(ctx: WriteContext) -> None:
        if not repository.delete_ssh_key(ctx.conn, user_id, fingerprint.strip()):
            who = f"{username} has" if username else "You have"
            raise NotFound(f"{who} no SSH key with the fingerprint {fingerprint.strip()}.")

    return job


def remove_key_by_id_job(user_id: int, key_id: int) -> Callable[[WriteContext], None]:
    """Remove one of the user's keys by its id (the API and the TUI)."""

    def job(ctx: WriteContext) -> None:
        if not repository.delete_ssh_key_by_id(ctx.conn, user_id, key_id):
            raise NotFound(f"You have no SSH key with id {key_id}.")

    return job

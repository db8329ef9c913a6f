"""Who may do what: the rules every endpoint applies to its caller (SPEC §2).

Credentials are of two kinds. A *login session* (username and password, what the TUI and
``livestudio login`` hold) may do everything the user may. An *access token* (the
profile token, or a client token from ``dvc studio login``) does exactly what its scopes
allow: ``EXPERIMENTS`` sends runs (``/api/live``, ``/webhook/dvc``) and reads the user's
own projects; a token without scopes has them all. Nothing else — tokens, password,
members, invitations, device approval, deleting or failing runs — is done with a token,
so a leaked CI token cannot take over the account or revoke the user's other tokens.
"""

from __future__ import annotations

from backend.db.repository import Principal
from backend.services.errors import Forbidden, MissingScope

EXPERIMENTS = "EXPERIMENTS"


def has_scope(user: Principal, scope: str) -> bool:
    """Whether the credential allows ``scope`` (sessions and unscoped tokens allow all)."""
    return user.is_session or not user.scopes or scope in user.scopes


def require_reader(user: Principal) -> Principal:
    """Reading projects and experiments: a session, or a token with ``EXPERIMENTS``."""
    if not has_scope(user, EXPERIMENTS):
        raise MissingScope(
            f"This access token lacks the {EXPERIMENTS} scope needed to read experiments."
        )
    return user


def require_session(user: Principal) -> Principal:
    """Account, member and run changes: only a login session."""
    if not user.is_session:
        raise MissingScope(
            "This needs a login session, not an access token: log in with"
            " `livestudio login` or in the TUI."
        )
    return user


def require_owner(user: Principal, owner_id: int | None, action: str) -> None:
    """Only the project's owner may ``action`` (the caller is already known to be a member)."""
    if owner_id != user.user_id:
        raise Forbidden(f"Only the project's owner can {action}.")


def can_change_run(user: Principal, poster_id: int, owner_ids: set[int]) -> bool:
    """A run is deleted or marked failed by its poster or an owner of a project showing it."""
    return user.user_id == poster_id or user.user_id in owner_ids


def may_change_run(user: Principal, poster_id: int, owner_ids: set[int]) -> None:
    """``can_change_run``, or ``Forbidden`` saying who can."""
    if not can_change_run(user, poster_id, owner_ids):
        raise Forbidden(
            "Only the run's poster or the project's owner can delete it or mark it failed."
        )

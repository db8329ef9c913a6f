"""Wire models of the read API and the event stream, shared by the backend and the TUI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from shared.live import ErrorInfo
from shared.values import WireNumber

Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
"""An id a client names in a body: a stored one fits in 64 bits (a bigger one was a 404
saying the URL was wrong)."""

TUI_CONNECTIONS = 8
"""The most connections a TUI holds open to the API (its event stream and requests in
flight); the server lets each TUI it serves over SSH hold that many beyond its address's
share (``backend.connection_limits``)."""

Status = Literal["running", "completed", "failed", "stopped"]
STATUSES: tuple[Status, ...] = ("running", "completed", "failed", "stopped")


class ProjectRow(msgspec.Struct, frozen=True, kw_only=True):
    """A project with its experiment counts."""

    id: int
    name: str
    repo_url: str
    subdir: str | None = None
    owner: str | None = None
    """Username of the owner (who adds and removes members); None once they are deleted."""
    experiments: int = 0
    running: int = 0


class ExperimentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment as the project table shows it (flattened metrics and params)."""

    id: int
    baseline_sha: str
    name: str
    status: Status
    client: str
    message: str | None = None
    subdir: str | None = None
    step: int | None = None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    experiment_rev: str | None = None
    pushed: bool = False
    errors: list[ErrorInfo] = []
    machine: dict[str, Any] | None = None
    metrics: dict[str, Any] = {}
    params: dict[str, Any] = {}
    steps_per_s: float | None = None
    """Steps a second over the last minute of steps (None until two steps arrived)."""


class ImageInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The latest image stored under one path."""

    path: str
    step: int | None
    updated_at: datetime


class ExperimentDetail(ExperimentRow, frozen=True, kw_only=True):
    """An experiment row plus the names of its series and its images."""

    series: list[str] = []
    images: list[ImageInfo] = []
    poster: str | None = None
    """Who posted the run."""
    may_change: bool | None = None
    """Whether the asking user may delete it or mark it failed (its poster, or the owner of
    a project showing it); ``None`` from a server too old to say."""


Point = tuple[int, WireNumber]


class PointsEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """New series rows and replaced images of one experiment, as sent on the event stream."""

    experiment_id: int
    series: dict[str, list[Point]]
    images: dict[str, int | None] = {}
    """Image paths stored by this post, each with its step (fetch the image again)."""


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Metadata of an access token; the token itself is never shown again."""

    id: int
    name: str
    kind: Literal["profile", "client"]
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None = None


class UserInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The logged-in user with their tokens."""

    username: str
    is_admin: bool
    profile_token: TokenInfo | None
    client_tokens: list[TokenInfo]


Username = Annotated[str, msgspec.Meta(max_length=64)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]


class LoginRequest(msgspec.Struct, frozen=True):
    """Credentials for ``POST /api/auth/login``."""

    username: Username
    password: Password


class LoginResponse(msgspec.Struct, frozen=True):
    """A new session."""

    session_token: str
    username: str


class NewToken(msgspec.Struct, frozen=True):
    """A freshly generated access token, shown exactly once."""

    token: str
    info: TokenInfo


class PasswordChange(msgspec.Struct, frozen=True):
    """Body of ``POST /api/user/password``."""

    current_password: Password
    new_password: Password
    reset_tokens: bool = False


class ProjectCreate(msgspec.Struct, frozen=True):
    """Body of ``POST /api/projects``."""

    name: Annotated[str, msgspec.Meta(max_length=255)]
    repo_url: Annotated[str, msgspec.Meta(max_length=2048)]
    subdir: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


class MemberAdd(msgspec.Struct, frozen=True):
    """Body of ``POST /api/projects/{id}/members``: whom to invite."""

    username: Username


class Members(msgspec.Struct, frozen=True, kw_only=True):
    """Who is in a project and who is invited to it."""

    owner: str | None
    members: list[str]
    invited: list[str]


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    """An invitation to join a project, waiting for the invited user's answer."""

    project_id: int
    project_name: str
    repo_url: str
    subdir: str | None = None
    invited_by: str | None = None
    created_at: datetime


class LiveAccepted(msgspec.Struct, frozen=True):
    """Answer to an accepted live event."""

    status: str
    experiment_id: int


class RunFinished(msgspec.Struct, frozen=True):
    """Answer to ``POST /api/live/finish``: the run finished, or null if none was open."""

    status: str
    experiment_id: int | None


class DeviceCode(msgspec.Struct, frozen=True):
    """Body of ``POST /api/device-login/lookup`` and ``/approve``: the code DVC printed."""

    user_code: Annotated[str, msgspec.Meta(max_length=64)]


class PendingLogin(msgspec.Struct, frozen=True):
    """A device login (``dvc studio login``) the user typed the code of, before approving."""

    def describe(self, now: datetime) -> str:
        """Which client asks for which token and scopes, since when (shown before approving)."""
        age = max(0, int((now - self.created_at).total_seconds()))
        scopes = ", ".join(self.scopes) or "all scopes"
        return (
            f"{self.client_name} asks for the access token {self.token_name!r} ({scopes}),"
            f" started {age} s ago"
        )

    user_code: str
    client_name: str
    token_name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime


class SshKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A public key that logs its user in over SSH."""

    id: int
    fingerprint: str
    key_type: str
    comment: str
    created_at: datetime
    last_used_at: datetime | None = None
    confirmed: bool = True
    """Whether its holder proved it theirs: a key added over the API logs in only after
    one SSH login with it and the account's password."""


class SshKeyAdd(msgspec.Struct, frozen=True):
    """Body of ``POST /api/user/keys``: one OpenSSH public key line."""

    public_key: Annotated[str, msgspec.Meta(max_length=16_384)]

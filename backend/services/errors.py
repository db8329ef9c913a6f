"""Domain errors raised by services; ``backend.errors`` maps them to HTTP answers.

Every message is one sentence the user can act on.
"""


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        """Seconds after which trying again makes sense (sent as ``Retry-After``)."""


class InvalidInput(DomainError):
    """The request is malformed or does not follow the schema."""


class NotAuthenticated(DomainError):
    """No credential, or one that is unknown, revoked or expired."""


class MissingScope(DomainError):
    """The credential is valid but does not allow this action."""


class Forbidden(DomainError):
    """The user can see the thing but may not do this to it (not its owner or poster)."""


class NotFound(DomainError):
    """The thing does not exist or the user may not see it."""


class Conflict(DomainError):
    """The request clashes with what exists (a taken name, say)."""


class TooLarge(DomainError):
    """The request body is over the limit."""


class RateLimited(DomainError):
    """Too many attempts; try again later."""


class Unavailable(DomainError):
    """The server cannot do it right now (the database is locked); retry shortly."""


class DiskFull(DomainError):
    """The server's disk is full: nothing new can be stored until space is freed."""


DISK_FULL = (
    "The server's disk is full, so nothing new can be stored; free space on it"
    " (the server recovers by itself)."
)

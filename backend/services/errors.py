"""Domain errors raised by services; ``backend.errors`` maps them to HTTP answers.

Every message is one sentence the user can act on.
"""


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """The request is malformed or does not follow the schema."""


class NotAuthenticated(DomainError):
    """No credential, or one that is unknown, revoked or expired."""


class MissingScope(DomainError):
    """The credential is valid but does not allow this action."""


class NotFound(DomainError):
    """The thing does not exist or the user may not see it."""


class Conflict(DomainError):
    """The request clashes with what exists (a taken name, say)."""


class TooLarge(DomainError):
    """The request body is over the limit."""


class RateLimited(DomainError):
    """Too many attempts; try again later."""

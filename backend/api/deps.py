"""Type aliases for injected parameters, so every handler marks them the same way."""

from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from backend.context import Backend as _Backend
from backend.context import provide_session_user
from backend.db.repository import Principal as _Principal

BackendDep = NamedDependency[SkipValidation[_Backend]]
UserDep = NamedDependency[SkipValidation[_Principal]]
"""The caller: by default a session or a token that may read experiments."""
SESSION_ONLY = {"user": Provide(provide_session_user)}
"""Handler dependencies for what only a login session may do (see ``services.access``)."""

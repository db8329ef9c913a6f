"""Type aliases for injected parameters, so every handler marks them the same way."""

from litestar.di import NamedDependency
from litestar.params import SkipValidation

from backend.context import Backend as _Backend
from backend.db.repository import Principal as _Principal

BackendDep = NamedDependency[SkipValidation[_Backend]]
UserDep = NamedDependency[SkipValidation[_Principal]]

"""Type aliases for injected parameters, so every handler marks them the same way."""

from typing import Annotated

from litestar.params import Dependency

from backend.context import Backend as _Backend
from backend.db.repository import Principal as _Principal

BackendDep = Annotated[_Backend, Dependency(skip_validation=True)]
UserDep = Annotated[_Principal, Dependency(skip_validation=True)]

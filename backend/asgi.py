"""The application as an import string, for server processes started by uvicorn itself.

``livestudio serve --workers N`` passes its settings to the N processes through
``LIVESTUDIO_*`` variables (``Settings.to_env``); each builds its app here.
"""

from __future__ import annotations

from litestar import Litestar

from backend.app import create_app
from backend.settings import Settings


def app_from_env() -> Litestar:
    """The app, configured from ``LIVESTUDIO_*`` variables."""
    return create_app(Settings.from_env())

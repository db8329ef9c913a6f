"""Where the TUI keeps its server URL and session, and how it behaves."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

DEFAULT_SERVER = "http://127.0.0.1:8000"
TOKEN_LINE = "export DVC_STUDIO_TOKEN="
"""How the demo's lines to copy give its token (kept true when the token changes)."""


def config_dir() -> Path:
    """The user's config directory (``LIVESTUDIO_CONFIG_DIR`` overrides it)."""
    override = os.environ.get("LIVESTUDIO_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("livestudio"))


class SessionNotKept(Exception):
    """The session file cannot be written; ``detail`` says where and what to do."""

    def __init__(self, path: Path, exc: OSError) -> None:
        self.detail = (
            f"Cannot keep the login in {path}: {exc.strerror or exc}. Set"
            " LIVESTUDIO_CONFIG_DIR to a folder you can write."
        )
        super().__init__(self.detail)


@dataclass
class Session:
    """A logged-in session on one server."""

    server: str
    username: str
    token: str


@dataclass
class TuiSettings:
    """How the TUI runs."""

    server: str = DEFAULT_SERVER
    """Base URL of the livestudio server (``--server`` or ``LIVESTUDIO_SERVER``)."""
    highlight_seconds: float = 5.0
    """How long a changed value stays orange (``LIVESTUDIO_HIGHLIGHT_SECONDS``)."""
    session_file: Path = field(default_factory=lambda: config_dir() / "session.json")
    """Where the session is kept, mode 0600."""
    welcome: str = ""
    welcome_lines: str = ""
    """Shell lines to copy with the welcome (the demo's server and token)."""
    """A notification shown when the app opens (the demo says where its server is)."""
    open_project: str | None = None
    """A project (name or id) to open at once; ``esc`` then goes to the projects list."""
    over_ssh: bool = False
    """Served over SSH by the server itself (``LIVESTUDIO_OVER_SSH``, set by it): bound to
    the session it was given, with no login form — whose server field would have made the
    server's own host send requests to any address an SSH user typed."""

    public_url: str = ""
    """The server's URL as people and training jobs reach it, when ``server`` is not
    (``LIVESTUDIO_PUBLIC_URL``: set by the server for the TUIs it serves over SSH, which
    reach it at its own address)."""

    @classmethod
    def from_env(cls, server: str | None = None) -> TuiSettings:
        """Flags, then ``LIVESTUDIO_*`` variables, then the stored session's server."""
        settings = cls()
        stored = settings.load_session()
        if server is not None:
            settings.server = server_url("--server", server)
        elif os.environ.get("LIVESTUDIO_SERVER"):
            settings.server = server_url("LIVESTUDIO_SERVER", os.environ["LIVESTUDIO_SERVER"])
        else:
            settings.server = (stored.server if stored else DEFAULT_SERVER).rstrip("/")
        settings.over_ssh = os.environ.get("LIVESTUDIO_OVER_SSH") == "1"
        if os.environ.get("LIVESTUDIO_PUBLIC_URL"):
            settings.public_url = server_url(
                "LIVESTUDIO_PUBLIC_URL", os.environ["LIVESTUDIO_PUBLIC_URL"]
            )
        seconds = os.environ.get("LIVESTUDIO_HIGHLIGHT_SECONDS")
        if seconds:
            settings.highlight_seconds = _seconds("LIVESTUDIO_HIGHLIGHT_SECONDS", seconds)
        return settings

    def load_session(self, server: str | None = None) -> Session | None:
        """The stored session on ``server`` (None: the one logged in last), if any."""
        sessions, last = self._stored()
        return sessions.get(last if server is None else server.rstrip("/"))

    def _stored(self) -> tuple[dict[str, Session], str]:
        """Every stored session by server URL, and the server logged in to last."""
        try:
            raw = json.loads(self.session_file.read_text())
            if "sessions" not in raw:  # the one-session file of earlier versions
                raw = {"last": raw["server"], "sessions": {raw["server"]: raw}}
            sessions = {
                url: Session(url, entry["username"], entry["token"])
                for url, entry in raw["sessions"].items()
            }
            return sessions, str(raw["last"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}, ""

    def save_session(self, session: Session) -> None:
        """Keep the session (one per server URL), readable by the user only; raises
        ``SessionNotKept``."""
        sessions, _ = self._stored()
        sessions[session.server] = session
        self._write(sessions, session.server)

    def check_writable(self) -> None:
        """Raise ``SessionNotKept`` now if a session could not be kept (before a login
        makes one on the server for nothing)."""
        folder = self.session_file.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise SessionNotKept(folder, exc) from None

    def _write(self, sessions: dict[str, Session], last: str) -> None:
        try:
            self.session_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.session_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(
                    {
                        "last": last,
                        "sessions": {
                            url: {"username": s.username, "token": s.token}
                            for url, s in sessions.items()
                        },
                    },
                    out,
                )
            os.chmod(self.session_file, 0o600)
        except OSError as exc:
            raise SessionNotKept(self.session_file, exc) from None

    def forget_session(self, server: str | None = None) -> None:
        """Forget the session on ``server`` (None: every one)."""
        sessions, last = self._stored()
        if server is not None:
            sessions.pop(server.rstrip("/"), None)
        try:
            if server is None or not sessions:
                self.session_file.unlink(missing_ok=True)
                return
            self._write(sessions, last if last in sessions else next(iter(sessions)))
        except (OSError, SessionNotKept):
            pass  # never kept, or kept where it cannot be changed: nothing more to do here


def server_url(name: str, raw: str) -> str:
    """``raw`` as a server URL without its trailing slash; ``name`` says where it came from."""
    url = raw.strip().rstrip("/")
    scheme, sep, host = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not host:
        raise SettingsError(
            f"{name} {raw!r} is not a server URL; give one like {DEFAULT_SERVER}"
            " (http:// or https://)."
        )
    return url


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message is one sentence."""


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise SettingsError(f"{name}={raw!r} must be a number of seconds from 0 to 3600.")
    return value

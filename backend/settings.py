"""Server settings, from flags or ``LIVESTUDIO_*`` environment variables."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

PASSWORD_MEMORY_KIB = 65536
"""argon2id's memory cost by default (argon2-cffi's, RFC 9106's second recommendation)."""


def ssh_host_key_path(db: Path) -> Path:
    """The SSH host key, generated at first start beside the database (mode 0600)."""
    return db.with_name("ssh_host_ed25519_key")


def default_db_path() -> Path:
    """The embedded database in the user's data directory (created on first use)."""
    return Path(platformdirs.user_data_dir("livestudio")) / "livestudio.db"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the server needs; every field reads ``LIVESTUDIO_<FIELD>`` too."""

    db: Path = field(default_factory=default_db_path)
    """SQLite file (``LIVESTUDIO_DB``); created with its folder when missing."""
    database_url: str = ""
    """The database as a URL (``LIVESTUDIO_DATABASE_URL``): ``sqlite:///PATH`` names the
    SQLite file like ``db`` does; ``postgresql://USER@HOST:PORT/NAME`` a PostgreSQL one."""
    redis_url: str = ""
    """Redis for fan-out between server processes (``LIVESTUDIO_REDIS_URL``,
    ``redis://HOST:6379/0``); needed with more than one process."""
    host: str = "127.0.0.1"
    """Interface to listen on (``LIVESTUDIO_HOST``); use 0.0.0.0 to accept remote clients."""
    public_url: str = ""
    """Where people and training jobs reach this server (``LIVESTUDIO_PUBLIC_URL``, e.g.
    ``https://studio.example.com`` behind a proxy): what the TUIs served over SSH show and
    tell to set as ``DVC_STUDIO_URL``. Unset: the address the SSH client reached, with
    ``port``."""
    port: int = 8000
    """TCP port (``LIVESTUDIO_PORT``)."""
    stale_after: float = 600.0
    """Seconds of silence after which a Running experiment becomes Stopped."""
    sweep_interval: float = 5.0
    """How often, in seconds, the server looks for stale runs and prunes old events."""
    heartbeat: float = 15.0
    """Seconds between keep-alive comments on an idle event stream."""
    event_retention: int = 200_000
    """How many stream events are kept for ``Last-Event-ID`` replay."""
    subscriber_backlog: int = 2_000
    """Events queued for one slow stream client before it is told to ``reset``."""
    session_days: float = 30.0
    """Days a TUI login lasts before the user must log in again."""
    device_code_ttl: float = 600.0
    """Seconds a device login code (``dvc studio login``) stays valid."""
    max_body: int = 30_000_000
    """Largest accepted request body in bytes (DVCLive splits its posts below 30 MB)."""
    request_timeout: float = 30.0
    """Seconds a client has to send a request's line and headers; its body may take that
    plus a second per 16 KiB (``LIVESTUDIO_REQUEST_TIMEOUT``). Slower requests get 408."""
    write_timeout: float = 3.0
    """Seconds a write may wait for a lock another program holds before it is answered 503
    (``LIVESTUDIO_WRITE_TIMEOUT``; below DVCLive's 5 s read timeout)."""
    ssh_port: int = 0
    """Serve the TUI over SSH on this port (``LIVESTUDIO_SSH_PORT``); 0, the default, is off."""
    ssh_idle_timeout: float = 3600.0
    """Seconds without a key press after which an SSH session is closed."""
    ssh_max_sessions: int = 4
    """SSH sessions one user may have open at once."""
    connections_per_address: int = 256
    """Open HTTP connections one client address may hold (``LIVESTUDIO_CONNECTIONS_PER_ADDRESS``;
    0 for no limit; trusted proxies are not limited): idle connections from one host used
    up the server's file descriptors, and every request failed while they were held."""
    forwarded_allow_ips: str = ""
    """Addresses of reverse proxies whose ``X-Forwarded-For`` names the client
    (``LIVESTUDIO_FORWARDED_ALLOW_IPS``, comma-separated, ``*`` for any); none by default,
    so no local program can pick the address login throttling sees."""
    watch_interval: float = 1.0
    """How often, in seconds, the server looks for stalled runs that a watch covers."""
    access_log: bool = False
    """Log every request, one line each (``LIVESTUDIO_ACCESS_LOG=1``): to see, say, why a
    training job's posts are refused; off by default: a line per post adds up under load."""
    webhook_allow_private: bool = False
    """Let watches post to webhooks on loopback or private addresses
    (``LIVESTUDIO_WEBHOOK_ALLOW_PRIVATE=1``); off so that no user can make the server
    probe its own network."""
    webhook_retry_delay: float = 2.0
    """Seconds before the first retry of a failed webhook post (then 4x, then 15x)."""
    disk_reserve: int = 8_000_000
    """Bytes of disk kept in reserve beside the database, given up when the disk fills so
    that logins keep working (``LIVESTUDIO_DISK_RESERVE``; 0 for none)."""
    password_memory_kib: int = PASSWORD_MEMORY_KIB
    """KiB of memory argon2id takes to hash or check a password
    (``LIVESTUDIO_PASSWORD_MEMORY_KIB``, read by every command that does; at least
    1024): the 64 MiB default is what makes guessing on GPUs expensive; lower it only on a
    machine too small for it. Stored hashes keep the cost they were made with."""

    @property
    def database(self) -> Path | str:
        """The database to open: the SQLite file, or the PostgreSQL URL."""
        return self.database_url if is_postgres_url(self.database_url) else self.db

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return "postgresql" if is_postgres_url(self.database_url) else "sqlite"

    def to_env(self) -> dict[str, str]:
        """These settings as ``LIVESTUDIO_*`` variables (``from_env`` reads them back)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "db" and self.engine != "sqlite":
                value = ""  # set, so that a LIVESTUDIO_DB of the shell does not clash
            if isinstance(value, bool):
                value = int(value)
            env[f"LIVESTUDIO_{f.name.upper()}"] = str(value)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ``LIVESTUDIO_*`` variables, then explicit non-None overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        given = {k: v for k, v in overrides.items() if v is not None}
        for f in fields(cls):
            raw = env.get(f"LIVESTUDIO_{f.name.upper()}")
            if raw is not None and raw != "" and f.name not in given:  # a flag wins, unread
                values[f.name] = _convert(f.name, f.type, raw)
        if "db" in given and "database_url" in given:
            raise ValueError("Give the database once: --db PATH or --database-url URL")
        if "db" in given:  # a flag wins over either variable
            values.pop("database_url", None)
        elif "database_url" in values and "db" in values and "database_url" not in given:
            raise ValueError("Set one of LIVESTUDIO_DB and LIVESTUDIO_DATABASE_URL, not both")
        values.update(given)
        url = str(values.get("database_url") or "")
        if url and not is_postgres_url(url):
            values["db"] = sqlite_path(url)
        elif url:
            check_postgres_url(url)
        redis = str(values.get("redis_url") or "")
        if redis:
            _check_redis_url(redis)
        if "db" in values:
            values["db"] = Path(str(values["db"])).expanduser()
        if values.get("public_url"):
            values["public_url"] = _public_url(str(values["public_url"]))
        if values.get("forwarded_allow_ips"):
            _check_proxies(str(values["forwarded_allow_ips"]))
        if "password_memory_kib" in values:
            _check_password_memory(int(str(values["password_memory_kib"])))
        for name, value in values.items():
            _check_range(name, value)
        settings = replace(cls(), **values)  # type: ignore[arg-type]
        if settings.ssh_port and settings.ssh_port == settings.port:
            raise ValueError(
                f"LIVESTUDIO_SSH_PORT (--ssh-port) and LIVESTUDIO_PORT (--port) are both"
                f" {settings.port}; give SSH a port of its own"
            )
        return settings


_POSITIVE = (
    *("stale_after", "device_code_ttl", "write_timeout", "ssh_idle_timeout", "request_timeout"),
)
_YEAR = 365 * 86400
_RANGES: dict[str, tuple[float, float, str]] = {
    **dict.fromkeys(_POSITIVE, (0, _YEAR, "a number of seconds above 0, at most a year")),
    # Each wakes the server up: a microsecond's heartbeat sent 16 KB a second to every
    # stream and kept an idle server busy.
    "heartbeat": (0.1, 3600, "0.1 to 3600 seconds"),
    "sweep_interval": (0.05, 3600, "0.05 to 3600 seconds"),
    "watch_interval": (0.05, 3600, "0.05 to 3600 seconds"),
    "webhook_retry_delay": (0, 3600, "0 to 3600 seconds"),
    "session_days": (0, 3650, "a number of days above 0, at most 3650"),
    "port": (1, 65535, "a port from 1 to 65535"),
    "ssh_port": (0, 65535, "a port from 1 to 65535, or 0 for none"),
    "event_retention": (1, math.inf, "a count of at least 1"),
    "subscriber_backlog": (1, math.inf, "a count of at least 1"),
    "ssh_max_sessions": (1, math.inf, "a count of at least 1"),
    "max_body": (1024, math.inf, "at least 1024 bytes"),
    "disk_reserve": (0, math.inf, "0 or more bytes"),
    "connections_per_address": (0, math.inf, "a count, or 0 for no limit"),
}
"""What a number setting may be (a negative ``stale_after`` would stop every running
experiment at once): the lowest value (excluded for ``_ABOVE_ZERO``), the highest."""
_ABOVE_ZERO = frozenset({*_POSITIVE, "session_days"})
"""The settings whose lowest value is excluded."""
_FLAGS = {"port": "--port", "ssh_port": "--ssh-port", "stale_after": "--stale-after"}


def _check_range(name: str, value: object) -> None:
    if name not in _RANGES or not isinstance(value, int | float):
        return
    low, high, rule = _RANGES[name]
    too_low = value <= low if name in _ABOVE_ZERO else value < low
    if too_low or value > high or value != value:  # NaN too
        flag = f" ({_FLAGS[name]})" if name in _FLAGS else ""
        raise ValueError(f"LIVESTUDIO_{name.upper()}{flag} is {value:g}; give {rule}")


def _check_proxies(listed: str) -> None:
    """Each of the trusted proxies is ``*``, an address or a network (``10.0.0.0/8``)."""
    items = [part.strip() for part in listed.split(",") if part.strip()]
    if "*" in items and len(items) > 1:
        raise ValueError(
            "LIVESTUDIO_FORWARDED_ALLOW_IPS lists * among addresses; give * alone (any"
            " proxy) or only the proxies' addresses"
        )
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item)  # strict, as uvicorn reads it (else a literal)
        except ValueError:
            raise ValueError(
                f"LIVESTUDIO_FORWARDED_ALLOW_IPS lists {item!r}, which is not an address or a"
                " network; list the proxies' addresses, comma-separated (or *)"
            ) from None


def url_host(host: str) -> str:
    """A host as it goes in a URL: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


REDIS_FORM = "redis://[:PASSWORD@]HOST:PORT/DB (or rediss://, unix://PATH?db=DB)"


def _check_redis_url(url: str) -> None:
    """A Redis URL redis-py can use as written: a port out of range or not a number, a
    broken IPv6 address or option raised a traceback at start, and a database index that
    is not a number was dropped (database 0, silently)."""
    from urllib.parse import urlsplit

    from redis.connection import parse_url

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"The Redis URL is not {REDIS_FORM}")
    try:
        parse_url(url)
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port out of range or not a number)
    except ValueError as exc:
        raise ValueError(f"The Redis URL does not read ({exc}); give {REDIS_FORM}") from None
    index = parts.path.strip("/")
    if parts.scheme != "unix" and index and not index.isdigit():
        raise ValueError(f"The Redis URL's database {index!r} is not a number; give {REDIS_FORM}")


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValueError(
            f"LIVESTUDIO_PUBLIC_URL {raw!r} is not a server's URL; give one like"
            " https://studio.example.com or http://host:8000 (no path)"
        )
    return url


def _check_password_memory(kib: int) -> int:
    if kib < 1024:
        raise ValueError(f"LIVESTUDIO_PASSWORD_MEMORY_KIB={kib} is below 1024; give at least 1024")
    return kib


def password_memory_kib(environ: Mapping[str, str] | None = None) -> int:
    """argon2id's memory cost: ``LIVESTUDIO_PASSWORD_MEMORY_KIB``, else 64 MiB."""
    raw = (os.environ if environ is None else environ).get("LIVESTUDIO_PASSWORD_MEMORY_KIB")
    if not raw:
        return PASSWORD_MEMORY_KIB
    if not raw.isdigit():
        raise ValueError(f"LIVESTUDIO_PASSWORD_MEMORY_KIB={raw!r} is not a whole number of KiB")
    return _check_password_memory(int(raw))


def is_postgres_url(url: str) -> bool:
    """Whether a database URL names PostgreSQL."""
    return url.startswith(("postgresql://", "postgres://"))


def check_postgres_url(url: str) -> None:
    """A PostgreSQL URL that names its database (or libpq's ``PGDATABASE`` does): a bare
    ``postgresql://`` went to whatever database libpq picks (the OS user's name) and
    migrated livestudio's tables into it."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError: its own sentence
        raise ValueError(f"The PostgreSQL URL does not read ({exc})") from None
    named = info.get("dbname") or info.get("service")  # (a service file may name it)
    if not named and not os.environ.get("PGDATABASE") and not os.environ.get("PGSERVICE"):
        raise ValueError(
            "The PostgreSQL URL names no database; give postgresql://USER@HOST:PORT/NAME"
        )


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///PATH`` URL (``sqlite:////abs/path`` for an absolute one)."""
    scheme, _, rest = url.partition("://")
    if scheme != "sqlite" or not rest.startswith("/") or len(rest) < 2:
        shown = f"{scheme}://{rest.split('@')[-1]}" if rest else url  # (no password shown)
        raise ValueError(
            f"The database URL {shown!r} is not sqlite:///PATH or postgresql://USER@HOST/NAME"
        )
    return Path(rest[1:]).expanduser()


def missing_db_hint(path: Path) -> str:
    """What to add when no database is at ``path``: ``sqlite:///tmp/x.db`` names the
    relative ``tmp/x.db``, and the absolute one was there all along."""
    if not path.is_absolute() and (Path("/") / path).exists():
        return f" (/{path} exists: give /{path}, or sqlite:////{path} as a URL)"
    return ""


def _convert(name: str, kind: object, raw: str) -> object:
    if str(kind) == "bool":
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"LIVESTUDIO_{name.upper()}={raw!r} is not 1/0, true/false, yes/no")
    target = {"int": int, "float": float, "Path": Path, "str": str}.get(str(kind), str)
    try:
        return target(raw)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(target, "valid")
        rule = f"; give {_RANGES[name][2]}" if name in _RANGES else ""
        flag = f" ({_FLAGS[name]})" if name in _FLAGS else ""
        raise ValueError(f"LIVESTUDIO_{name.upper()}{flag}={raw!r} is not {what}{rule}") from None

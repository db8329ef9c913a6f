"""Repository URL normalisation: every spelling of one Git repository gets one key."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

_SHORTHANDS = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
# scp-like syntax: [user@]host:path, as long as it is not a Windows drive letter or a URL.
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]{2,}):(?P<path>(?!//).+)$")


class InvalidRepoUrl(ValueError):
    """The string is not a Git repository URL in any form the clients send."""


@functools.lru_cache(maxsize=4096)  # every post carries its URL; runs use few of them
def repo_key(url: str) -> str:
    """Return the normalised key ``host/owner/repo`` of a Git URL.

    ``git@github.com:Acme/Vision.git``, ``https://github.com/acme/vision``,
    ``ssh://git@github.com/acme/vision.git`` and ``github:acme/vision`` all give
    ``github.com/acme/vision``. Credentials, ports and a trailing ``.git`` or ``/`` are
    dropped and the key is lower-case. Local paths become ``local/<path>``.
    """
    raw = url.strip()
    if not raw:
        raise InvalidRepoUrl(
            "repo_url is empty; expected a Git URL such as git@host:owner/repo.git"
        )
    host, path = _split(raw)
    path = path.strip("/")
    if path.lower().endswith(".git"):  # `Repo.GIT` too (version 22 re-keyed stored ones)
        path = path[: -len(".git")]
    path = path.strip("/")
    if not path:
        raise InvalidRepoUrl(f"repo_url {url!r} has no repository path; expected host/owner/repo")
    return f"{host}/{path}".lower()


def without_credentials(url: str) -> str:
    """The URL as stored and shown: an ``https://user:token@host/...`` (GitLab CI's
    ``origin``, a personal access token in a clone URL) loses its user and password; an
    SSH URL (``ssh://``, ``git+ssh://``…) keeps its user (``git@``: no secret) and loses
    only a password; ``git@host:path`` has none."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if "ssh" in parts.scheme.lower():
        if parts.password is None:
            return url
        host = f"{userinfo.partition(':')[0]}@{host}"
    return parts._replace(netloc=host).geturl()


def repo_name(url: str) -> str:
    """The repository's short name (``vision`` for ``git@github.com:acme/vision.git``)."""
    return repo_key(url).rsplit("/", 1)[-1]


def _split(raw: str) -> tuple[str, str]:
    if "://" in raw:
        try:
            parts = urlsplit(raw)
            hostname = parts.hostname
        except ValueError:  # "https://[::1/x": an unclosed IPv6 literal, say
            raise InvalidRepoUrl(f"repo_url {raw!r} is not a valid URL") from None
        if parts.scheme == "file":
            return "local", parts.path
        if not hostname:
            raise InvalidRepoUrl(f"repo_url {raw!r} has no host; expected a Git URL")
        return hostname, parts.path
    scheme, sep, rest = raw.partition(":")
    if sep and scheme in _SHORTHANDS and not rest.startswith("/"):
        return _SHORTHANDS[scheme], rest
    if raw.startswith(("/", "./", "../", "~")):
        return "local", raw
    match = _SCP_LIKE.match(raw)
    if match:
        return match["host"], match["path"]
    raise InvalidRepoUrl(
        f"repo_url {raw!r} is not a Git URL; expected e.g. git@github.com:owner/repo.git"
    )


def subdir_key(subdir: str | None) -> str | None:
    """A monorepo sub-project's path as projects and runs are matched by (None: the root).

    DVC sends the path of the DVC root within the repository as the OS spells it; people
    type it with or without slashes around it: ``sub/a``, ``./sub/a/`` and ``sub\\a`` are
    one sub-project.
    """
    if not subdir:
        return None
    parts = [p for p in subdir.strip().replace("\\", "/").split("/") if p not in {"", "."}]
    return "/".join(parts) or None

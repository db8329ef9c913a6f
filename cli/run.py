"""``livestudio run -- CMD…``: run a training command and report how it really ended.

DVCLive sends a normal ``done`` even when training raised, and nothing at all when the
process is killed, so the server cannot tell a crash from success. This wrapper runs the
command with the livestudio settings in its environment and a known experiment name;
when the command exits non-zero or dies by a signal it posts a ``done`` with the exit
status and the last lines of stderr as ``errors``, which makes the experiment Failed with
that reason. When it succeeds, it asks the server to end the run Completed if DVCLive's own
``done`` never arrived (``POST /api/live/finish``, which never creates a run). Output and
exit code pass through unchanged.
"""

from __future__ import annotations

import collections
import contextlib
import email.utils
import math
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import platformdirs

from cli import remote
from cli.admin import CliError
from shared.live import new_wrapper_name
from shared.repo_url import InvalidRepoUrl, repo_key
from tui.client import detail_of, plain_reason
from tui.settings import server_url

NULL_SHA = "0" * 40
TAIL_LINES = 20
EXCEPTION_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)\w*)(?::\s*(.*))?$"
)


NOT_STARTED = "Nothing was started: fix that, or run the command without `livestudio run`."
TOKEN_TEXT = re.compile(r"[!-~]+")
"""What a token can hold: printable ASCII without spaces (livestudio's are lst_ + base64url)."""


GIT = ("git", "-c", "safe.directory=*", "-c", "core.fsmonitor=false")
"""How the wrapper runs git on the run's repository. safe.directory: a repository another
user owns (a container's bind mount) is read as DVCLive reads it (dulwich asks no such
question; git refused and said nothing). Then no command the repository's config names may
run: ``core.fsmonitor`` is the one that ``ls-files`` would start (and the wrapper runs no
command that starts hooks)."""

UNTRUSTED = frozenset({"url", "token"})
"""Settings never taken from a repository's own ``.dvc/config`` or ``.dvc/config.local``."""


def dvc_studio_config(start: Path | None = None) -> dict[str, str]:
    """DVC's ``studio`` settings (url, token, repo_url, offline) as DVC and DVCLive read them.

    DVC merges four files, each overriding the one before: the system's, the user's
    (``dvc studio login`` writes there), the repository's ``.dvc/config`` and its
    ``.dvc/config.local``, the repository being the nearest folder at or above ``start``
    that holds ``.dvc``. The repository's two give no ``url`` nor ``token`` (``UNTRUSTED``).
    """
    folders = [
        os.environ.get("DVC_SYSTEM_CONFIG_DIR") or platformdirs.site_config_dir("dvc", "iterative"),
        os.environ.get("DVC_GLOBAL_CONFIG_DIR") or platformdirs.user_config_dir("dvc", "iterative"),
    ]
    files = [Path(folder) / "config" for folder in folders]
    root = _dvc_root(start or Path.cwd())
    values: dict[str, str] = {}
    for file in files:
        values.update(_studio_section(file))
    if root is not None:
        # Both may come with whatever repository was cloned or downloaded (config.local
        # too: forced into Git, or in an archive, however git is asked): its server would
        # get the user's token and stderr (DVCLive alone would send them too; the wrapper's
        # environment overrides it). They may name the repository.
        for name in ("config", "config.local"):
            file = root / ".dvc" / name
            section = _studio_section(file)
            values.update({k: v for k, v in section.items() if k not in UNTRUSTED})
    return values


def _dvc_root(start: Path) -> Path | None:
    """The DVC repository at or above ``start`` (the nearest folder holding ``.dvc``)."""
    here = start.resolve()
    return next((d for d in (here, *here.parents) if (d / ".dvc").is_dir()), None)


def _studio_section(file: Path) -> dict[str, str]:
    """The ``[studio]`` (or ``['studio']``) section of one DVC config file (INI), and its
    ``exp`` section's ``git_remote`` (as ``exp.git_remote``)."""
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    values, section = {}, ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]'\" ").lower()
        elif "=" in line and section in ("studio", "exp"):
            key, _, value = line.partition("=")
            key = key.strip().lower()
            if section == "exp" and key != "git_remote":
                continue
            values[f"exp.{key}" if section == "exp" else key] = _value(value)
    return values


def _value(raw: str) -> str:
    """A value as DVC's configobj reads it: what is quoted, else up to a ``#`` comment."""
    value = raw.strip()
    quote = value[:1]
    if quote in ("'", '"') and quote in value[1:]:
        return value[1 : value.index(quote, 1)]
    return value.split("#", 1)[0].strip()


def _offline(dvc_config: dict[str, str]) -> bool:
    """Whether the user turned sending off: exactly when DVCLive then sends nothing (the
    variable or the setting, read as dvc-studio-client reads them)."""

    def truthy(value: str | None) -> bool:
        return value is not None and re.search("1|y|yes|true", value, flags=re.I) is not None

    return truthy(os.environ.get("DVC_STUDIO_OFFLINE")) or truthy(dvc_config.get("offline"))


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run([*GIT, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _remote_url() -> str | None:
    """The repository's URL as DVCLive names it (dvc-studio-client asks dulwich): the
    current branch's remote, else ``origin``, as configured — not rewritten by Git's
    ``url.<base>.insteadOf`` (``git ls-remote --get-url`` applies it, and the failure went
    to another project than the run's)."""
    branch = _git("symbolic-ref", "--quiet", "--short", "HEAD")
    remote = (_git("config", "--get", f"branch.{branch}.remote") if branch else None) or "origin"
    return _git("config", "--get", f"remote.{remote}.url")


def failure_errors(returncode: int, tail: list[str]) -> list[dict[str, str]]:
    """The ``errors`` of a failed run: the exception's last line, then the exit status."""
    lines = [line for line in tail if line.strip()]
    if returncode < 0:
        status = f"killed by {signal.Signals(-returncode).name}"
    else:
        status = f"exited with status {returncode}"
    errors = []
    if lines:
        match = EXCEPTION_LINE.match(lines[-1].strip())
        if match:
            errors.append({"cls": match[1], "text": match[2] or ""})
    detail = status + (
        ";\nlast lines of stderr:\n" + "\n".join(lines[-TAIL_LINES:]) if lines else ""
    )
    errors.append({"cls": "ExitStatus", "text": detail})
    return errors


def _pump(source: IO[bytes], tail: collections.deque[str]) -> None:
    """Copy the child's stderr through, keeping its last lines."""
    sink = sys.stderr.buffer
    partial = b""
    for chunk in iter(lambda: source.read1(65536), b""):  # type: ignore[attr-defined]
        sink.write(chunk)
        sink.flush()
        partial += chunk
        *done, partial = partial.split(b"\n")
        tail.extend(line.decode(errors="replace") for line in done)
    if partial:
        tail.append(partial.decode(errors="replace"))


def run(command: list[str], server: str | None) -> int:
    """Run ``command``; returns the exit code to exit with."""
    if not command:
        raise CliError("Say what to run: livestudio run -- python train.py")
    dvc_config = dvc_studio_config()
    # The flag first (flags win over the environment), then what DVCLive itself would use.
    sources = [
        ("DVC_STUDIO_URL", os.environ.get("DVC_STUDIO_URL") or None),
        ("LIVESTUDIO_SERVER", os.environ.get("LIVESTUDIO_SERVER") or None),
        ("DVC's studio.url", dvc_config.get("url") or None),
        ("the logged-in session's server", _stored_server()),
    ]
    if server is not None:
        sources.insert(0, ("--server", server))
    named = next(((where, value) for where, value in sources if value is not None), None)
    url = server_url(*named) if named else None
    token = (
        os.environ.get("DVC_STUDIO_TOKEN")
        or os.environ.get("STUDIO_TOKEN")
        or dvc_config.get("token")
    )
    # Offline, DVCLive sends nothing, and nor does the wrapper: it only runs the command.
    offline = _offline(dvc_config)
    if not offline and token and not TOKEN_TEXT.fullmatch(token):
        # (httpx raised on a header it cannot send; DVCLive's requests fails the same way)
        raise CliError(
            "The access token (DVC_STUDIO_TOKEN, or DVC's studio.token) holds a space, a line"
            f" break or a letter no token has; copy it again. {NOT_STARTED}"
        )
    if not offline and (not url or not token):
        raise CliError(
            "No livestudio server or access token: set DVC_STUDIO_URL and DVC_STUDIO_TOKEN"
            " (or `dvc config --global studio.url …` and `studio.token …`: a repository's own"
            " .dvc config is not trusted with them), or run `dvc studio login --hostname URL`."
        )
    # Which repository and commit the run is of, as it starts (as DVCLive reads them): a
    # commit or a new remote during hours of training sent the failure to another
    # experiment, or another project.
    # `dvc exp run` names its experiments and reports a failed stage itself (a `done`
    # without experiment_rev); reporting again would only add a second, nameless row.
    dvc_command = _dvc_subcommand(command)
    dvc_reports = dvc_command[:2] == ["exp", "run"]
    # DVCLive asks DVC for the repository's name (DVC comes with it, and makes a DVC
    # repository of a Git one if need be), except inside a DVC stage (`dvc repro`, or this
    # wrapper in a stage's command), where DVC_ROOT is set, and outside Git.
    in_stage = "DVC_ROOT" in os.environ or dvc_command[:1] == ["repro"]
    in_git = _git("rev-parse", "--is-inside-work-tree") == "true"
    where = _run_of(dvc_config, dvc_names_it=in_git and not in_stage)
    started = None
    if not offline and url and token:
        started = _check_server(url, token, named[0] if named else "--server")
        if not dvc_reports:
            _warn_about_repository(where[0])
    name = os.environ.get("DVC_EXP_NAME") or new_wrapper_name()
    env = dict(os.environ)
    if url and token:
        env.update({"DVC_STUDIO_URL": url, "DVC_STUDIO_TOKEN": token})
    if not dvc_reports:
        env["DVC_EXP_NAME"] = name
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    # Listening before the command starts: a signal sent the instant it starts is not lost.
    forwarder = _SignalForwarder()
    try:
        if forwarder.early:  # stopped before anything started: start nothing
            return 128 + forwarder.early[0]
        try:
            # Popen before _blocked: the command must not inherit a blocked signal mask.
            child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        except OSError as exc:
            # The codes shells use (127: not found, 126: found but not runnable), so a
            # script checking them reads them as it would without the wrapper. (Unlike a
            # shell, a script without a #! line is not run with sh: 126.)
            print(f"livestudio: Cannot run {command[0]}: {exc.strerror or exc}.", file=sys.stderr)
            return 127 if isinstance(exc, FileNotFoundError) else 126
        forwarder.attach(child)
        pump = threading.Thread(target=_pump, args=(child.stderr, tail), daemon=True)
        # Started with the signals blocked, the pump thread keeps them blocked: the kernel
        # then always hands them to the main thread, whose wait they interrupt.
        with _blocked(FORWARDED):
            pump.start()
        returncode = child.wait()
        pump.join(5)
    finally:
        forwarder.restore()
    if not dvc_reports and not offline and url and token:
        if returncode != 0:
            _report(url, token, name, returncode, list(tail), where, started)
        elif started is not None:
            _finish(url, token, name, where, started)
    return 128 - returncode if returncode < 0 else returncode


def _usable(repo_url: str) -> bool:
    try:
        return bool(repo_key(repo_url))
    except InvalidRepoUrl:
        return False


DVC_OPTIONS_WITH_VALUES = frozenset({"--cd"})


def _dvc_subcommand(command: list[str]) -> list[str]:
    """What ``dvc`` is asked to do (``["repro"]``, ``["exp", "run", …]``), past its global
    options (``dvc -q repro``), also as ``python -m dvc``; empty for any other command."""
    if Path(command[0]).name == "dvc":
        args = command[1:]
    elif Path(command[0]).name.startswith("python") and command[1:3] == ["-m", "dvc"]:
        args = command[3:]
    else:
        return []
    while args and args[0].startswith("-"):
        args = args[2:] if args[0] in DVC_OPTIONS_WITH_VALUES else args[1:]
    return args


def _warn_about_repository(repo_url: str | None) -> None:
    """Say at once when DVCLive may well send nothing: without a repository URL it sends
    no event, and with one the server refuses, its `start` is refused and it stops sending.
    Only a warning: DVCLive may know better (it reads Git with dulwich, where `git` may
    be missing or refuse a repository another user owns)."""
    if not repo_url:
        problem = "found no Git remote naming this repository, so DVCLive may send nothing"
    else:
        try:
            repo_key(repo_url)
            return
        except InvalidRepoUrl as exc:
            problem = f"the server will refuse DVCLive's posts: {exc}"
    print(
        f"livestudio: {problem} (set DVC_STUDIO_REPO_URL to the repository's Git URL); a"
        " failure cannot be reported either.",
        file=sys.stderr,
    )


def _check_server(url: str, token: str, given_as: str) -> float | None:
    """Refuse to start when DVCLive could not send to the server: a typo'd, revoked or
    unreachable setup would lose the run's live view and its failure report, found out
    only hours later. Returns the server's time (as it answers, else its ``Date``), by which a
    successful run's end is told from an older run of the same name. ``given_as``: where
    the URL was set (``DVC_STUDIO_URL``…), named in what to correct."""
    try:
        answer = httpx.get(
            f"{url.rstrip('/')}/api/live",
            headers={"Authorization": f"token {token}"},
            timeout=httpx.Timeout(10),
            verify=trusted_certificates(),
        )
    except httpx.HTTPError as exc:
        raise CliError(f"Cannot reach {url}: {remote.first_contact(exc)}. {NOT_STARTED}") from exc
    if answer.status_code in (401, 403):
        raise CliError(f"{url} refused the token: {detail_of(answer)} {NOT_STARTED}")
    if answer.status_code not in (200, 405):  # (405: a server from before the check)
        # livestudio's own sentence, or a line saying something else answered (a web
        # page's HTML printed whole before).
        raise CliError(f"{remote.refused(url, answer, given_as)} {NOT_STARTED}")
    try:
        told = answer.json().get("time")
    except (ValueError, AttributeError):
        told = None
    if isinstance(told, (int, float)) and not isinstance(told, bool) and math.isfinite(told):
        return float(told)
    try:  # a server from before it said its time: whole seconds, less one
        return email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp() - 1
    except (KeyError, TypeError, ValueError):
        return None  # (a proxy that drops it: no finishing, rather than a wrong one)


def trusted_certificates() -> ssl.SSLContext | bool:
    """The certificates DVCLive trusts: it sends with ``requests``, which reads a private
    CA from ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (httpx reads ``SSL_CERT_FILE``
    only, and refused a server DVCLive reached)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        return True
    try:
        if os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"Cannot read the certificates in {bundle}: {exc}.") from exc


def _stored_server() -> str | None:
    from tui.settings import TuiSettings

    session = TuiSettings().load_session()
    return session.server if session else None


FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class _SignalForwarder:
    """Pass SIGTERM, SIGHUP and SIGINT on to the command, and outlive them to report how it
    ended.

    Ctrl-C at a terminal signals its whole foreground process group, the command included:
    then the wrapper only keeps waiting, as sending it again could cut short the command's
    own clean-up (DVCLive's last post). A SIGINT sent to the wrapper alone (a supervisor,
    an IDE's stop button) is passed on. A signal that comes before the command starts means
    it is not started; one that comes while it is starting is passed on once it has.
    """

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self.early: list[int] = []
        """Signals that came before the command started."""
        # A signal the wrapper was told to ignore (nohup, a script's `&`) stays ignored,
        # and the command inherits that: it is neither caught nor passed on.
        self._previous = {
            signum: signal.signal(signum, self._handle)
            for signum in FORWARDED
            if signal.getsignal(signum) is not signal.SIG_IGN
        }

    def _handle(self, signum: int, _frame: object) -> None:
        if self._child is None:
            self.early.append(signum)
        elif signum != signal.SIGINT or not _in_terminal_foreground():
            self._child.send_signal(signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """The command has started: forward to it, beginning with what came meanwhile."""
        self._child = child
        for signum in self.early:
            child.send_signal(signum)
        self.early.clear()

    def restore(self) -> None:
        """Put back the handlers there were before."""
        for signum, old in self._previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def _blocked(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    """Block ``signals`` in this thread meanwhile (threads started inside inherit it)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _in_terminal_foreground() -> bool:
    """Whether this process is in its terminal's foreground group (Ctrl-C reaches all of it)."""
    try:
        with open("/dev/tty", "rb") as tty:
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except OSError:  # no controlling terminal
        return False


def _run_of(dvc_config: dict[str, str], dvc_names_it: bool) -> tuple[str | None, str]:
    """The repository as DVCLive names it (or the failure would land in another project)
    and the commit checked out: the run's, read before it starts.

    ``dvc_names_it``: DVCLive takes DVC's name for it first, as `dvc exp` does:
    ``DVC_EXP_GIT_REMOTE`` or ``exp.git_remote``, a remote's name or a URL. Then
    dvc-studio-client's order: the variables, DVC's ``studio.repo_url``, the Git remote.
    """
    repo_url = None
    if dvc_names_it:
        # (Set but empty, the variable still wins, as DVC reads it.)
        git_remote = os.environ.get("DVC_EXP_GIT_REMOTE", dvc_config.get("exp.git_remote"))
        if git_remote:
            repo_url = _git("config", "--get", f"remote.{git_remote}.url") or git_remote
    repo_url = (
        repo_url
        or os.environ.get("DVC_STUDIO_REPO_URL")
        or os.environ.get("STUDIO_REPO_URL")
        or dvc_config.get("repo_url")
        or _remote_url()
    )
    return repo_url, _git("rev-parse", "HEAD") or NULL_SHA


def _report(
    url: str,
    token: str,
    name: str,
    returncode: int,
    tail: list[str],
    where: tuple[str | None, str],
    started: float | None,
) -> None:
    """The command failed: its run is Failed with the reason. That is the run that posted
    since ``started``; if none did (the command failed before DVCLive said a word), a run
    of its own: an earlier run of the name, ended long ago, is left as it ended."""
    repo_url, baseline_sha = where
    if not repo_url:  # (said when the command started)
        return
    body = _done(name, repo_url, baseline_sha)
    body["errors"] = failure_errors(returncode, tail)
    if started is not None:
        answer = _post(
            url,
            f"/api/live/finish?since={started:.6f}",
            token,
            body,
            "the failure report",
            unknown_is_fine=True,  # (a server from before it took failures: as below)
        )
        if answer is not None and answer.get("experiment_id") is not None:
            return
        if answer is not None:  # nothing posted since: a run of its own, begun and failed
            start = {k: v for k, v in body.items() if k != "errors"} | {"type": "start"}
            _post(url, "/api/live", token, start, "the failure report")
    _post(url, "/api/live", token, body, "the failure report")


def _finish(url: str, token: str, name: str, where: tuple[str | None, str], started: float) -> None:
    """The command succeeded: end its run Completed if DVCLive's own ``done`` never arrived
    (the server restarting as training ended). The server leaves any other run alone: one
    that ended, and one that posted nothing since ``started`` (an old crashed run of a
    name reused with ``DVC_EXP_NAME`` was made Completed)."""
    repo_url, baseline_sha = where
    if repo_url is None or not _usable(repo_url):  # nor could DVCLive name a run (said)
        return
    answer = _post(
        url,
        f"/api/live/finish?since={started:.6f}",
        token,
        _done(name, repo_url, baseline_sha),
        "the run's end",
        unknown_is_fine=True,
    )
    if answer is not None and answer.get("experiment_id") is not None:
        print(
            f"livestudio: {name} is Completed (DVCLive's own end of the run did not reach {url}).",
            file=sys.stderr,
        )


def _done(name: str, repo_url: str, baseline_sha: str) -> dict[str, object]:
    return {
        "type": "done",
        "repo_url": repo_url,
        "baseline_sha": baseline_sha,
        "name": name,
        "client": "dvclive",
    }


def _post(
    url: str,
    path: str,
    token: str,
    body: dict[str, object],
    what: str,
    unknown_is_fine: bool = False,
) -> dict[str, object] | None:
    """Post ``body``; the server's JSON answer, or None after one line saying why not
    (``unknown_is_fine``: none for a server from before ``path`` existed)."""
    try:
        response = httpx.post(
            f"{url.rstrip('/')}{path}",
            json=body,
            headers={"Authorization": f"token {token}"},
            timeout=httpx.Timeout(30, read=5),
            verify=trusted_certificates(),
        )
    except httpx.HTTPError as exc:
        print(f"livestudio: could not send {what} to {url}: {plain_reason(exc)}.", file=sys.stderr)
        return None
    if unknown_is_fine and response.status_code in (404, 405):
        return None
    if response.status_code != 200:
        print(
            f"livestudio: the server refused {what}"
            f" ({response.status_code}): {detail_of(response)}",
            file=sys.stderr,
        )
        return None
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None

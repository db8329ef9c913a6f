"""``livestudio serve --ssh-port 2222``: the TUI served over SSH, keys as the login.

What an SSH client may do: authenticate with a public key registered for a user (no
passwords, no keyboard-interactive), then either open the TUI (a PTY session, optionally
``ssh -t host PROJECT``) or run ``ls [--json]``. A key a user added themselves is only
their claim until its holder proves it theirs: connecting as that user (``ssh -t
NAME@host``), its first session asks for the account's password. A public key is public:
without this, anyone could paste someone else's key into their own account and have them
log in as that account, or claim it first and lock them out. No shell, no other command, no port or
agent forwarding, no SFTP or SCP: asyncssh refuses what is not enabled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shlex
import shutil
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import msgspec
from asyncssh.connection import SSHConnection

from backend.connection_limits import ConnectionLimit, connection_key, own_tuis
from backend.context import Backend
from backend.db import repository
from backend.db.writer import WriteContext
from backend.services import accounts
from backend.services.errors import NotAuthenticated, RateLimited
from backend.services.ingest import token_hash
from backend.settings import Settings, ssh_host_key_path, url_host
from backend.ssh.tui_session import RESTORE_TERMINAL, run_tui
from shared.api import ExperimentRow
from shared.text import printable
from shared.watches import is_stalled

log = logging.getLogger("livestudio")
USAGE = (
    "livestudio over SSH: `ssh -t HOST -p PORT` opens the terminal UI, `ssh -t HOST -p PORT"
    " PROJECT` opens a project, `ssh HOST -p PORT ls [--json]` lists your projects;"
    " there is no shell.\n"
)
_rows = msgspec.json.Decoder(list[ExperimentRow])


def host_key(db: Path) -> asyncssh.SSHKey:
    """The server's host key, generated at first start (mode 0600)."""
    path = ssh_host_key_path(db)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        path.touch(mode=0o600)
        path.write_bytes(key.export_private_key())
        path.chmod(0o600)
    return asyncssh.read_private_key(path)


def fingerprint(db: Path) -> str:
    """The host key's SHA256 fingerprint, as `ssh` shows it on first connection."""
    return str(host_key(db).get_fingerprint("sha256"))


KEY_CHECK_EVERY = 5.0
"""How often open connections are checked against the registered keys."""
ALIVE_EVERY = 60.0
"""How often a server marks its SSH TUIs' logins alive; unmarked for ``STALE_AFTER``,
any server with SSH ends them (their server was killed and did not come back)."""
STALE_AFTER = 3 * ALIVE_EVERY
REFUSE_WITHIN = 5.0
"""Seconds a connection over its address's limit is kept at most (to be told why)."""
QUIET_CONNECTION_TIMEOUT = 60.0
"""Seconds a connection may stay open with no session (channel) in it (or the idle
timeout, if shorter): logged in and holding nothing, a thousand of them held the
server's file descriptors for good."""
MAX_SESSIONS_PER_CONNECTION = 10
"""Sessions (channels) one connection may hold open at once, as OpenSSH's ``MaxSessions``:
each holds a task and buffers, and each open key prompt waits up to ``CONFIRM_TIMEOUT``."""
CONFIRM_TRIES = 3
"""Passwords one session may try to confirm a key with."""
CONFIRM_TIMEOUT = 120.0
"""Seconds a session has to confirm its key."""


def _ssh_session_job(user_id: int, listener: str) -> Callable[[WriteContext], tuple[str, int]]:
    """A login session for an SSH TUI, recorded as such; returns (token, session id)."""

    def job(ctx: WriteContext) -> tuple[str, int]:
        # The key let them in before a lock committed (it deletes the keys in the same
        # transaction): no session for a locked-out account.
        if repository.password_hash_of(ctx.conn, user_id) in (None, repository.LOCKED):
            raise NotAuthenticated("This account is locked.")
        secret = accounts.new_secret(accounts.SESSION_PREFIX)
        session_id = repository.insert_session(ctx.conn, user_id, token_hash(secret))
        repository.mark_ssh_session(ctx.conn, session_id, listener)
        return secret, session_id

    return job


@dataclass
class SshService:
    """The SSH side of one server process."""

    backend: Backend
    http_url: str
    folder: Path
    """Where the sessions' private folders live (emptied at start)."""
    listener: str = ""
    """This server's SSH listener (host:port), which its TUIs' logins are recorded under."""
    tuis_key: str = "loopback"
    """What the HTTP API counts the TUIs' connections against (``connection_key`` of the
    address they come from, ``api_address``)."""
    sessions: Counter[int] = field(default_factory=Counter)
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    channels: Counter[SSHConnection] = field(default_factory=Counter)
    """The sessions open on each connection."""
    quiet_since: dict[SSHConnection, float] = field(default_factory=dict)
    limit: ConnectionLimit = field(default_factory=lambda: ConnectionLimit("SSH", 256))
    """Open connections by client address (``LIVESTUDIO_CONNECTIONS_PER_ADDRESS``)."""
    """When each connection with no session open last had one (or opened)."""
    logins: dict[int, int] = field(default_factory=dict)
    """The sessions of the TUIs open over SSH: session id → user id."""
    terminals: dict[SSHConnection, dict[asyncssh.SSHServerProcess[bytes], asyncio.Event]] = field(
        default_factory=dict
    )
    """The TUIs running on each connection, each with the switch that mutes its output (to
    hand their terminals back when the connection is cut)."""
    acceptor: asyncssh.SSHAcceptor | None = None
    _watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Watch the open connections' keys."""
        self._watch = asyncio.create_task(self._watch_keys(), name="livestudio-ssh-keys")

    async def _watch_keys(self) -> None:
        """Close connections whose key was removed (or given to someone else) since login.

        The key decides on every new channel too; this also ends what is already open,
        so removing a stolen key locks its holder out at once, whatever they keep open.
        """
        alive_at = 0.0
        while True:
            await asyncio.sleep(KEY_CHECK_EVERY)
            for conn in list(self.connections):
                if not await self._key_still_valid(conn):
                    await self._cut(conn, "the SSH key of this session was removed")
            now = self.backend.clock()
            quiet_for = min(QUIET_CONNECTION_TIMEOUT, self.backend.settings.ssh_idle_timeout)
            for quiet, since in list(self.quiet_since.items()):
                if now - since > quiet_for:
                    quiet.close()
            if now - alive_at >= ALIVE_EVERY:
                alive_at = now
                with contextlib.suppress(Exception):  # (a database away: next time)
                    await self.backend.writer.submit(_mark_alive(list(self.logins), now))

    async def _cut(self, conn: SSHConnection, why: str) -> None:
        """Close a connection, first handing its terminals back as they were: the TUI's
        alternate screen, mouse reporting and hidden cursor would otherwise stay on."""
        for process, muted in list(self.terminals.get(conn, {}).items()):
            muted.set()
            with contextlib.suppress(Exception):
                process.stdout.write(RESTORE_TERMINAL + f"\r\nlivestudio: {why}.\r\n".encode())
                # Closing the connection outright can drop what is still buffered; ending
                # the channel sends it first.
                process.exit(1)
                await asyncio.wait_for(process.channel.wait_closed(), 2)
        conn.close()

    async def _key_still_valid(self, conn: SSHConnection) -> bool:
        user: repository.UserAuth | None = conn.get_extra_info("livestudio_user")
        fingerprint: str | None = conn.get_extra_info("livestudio_key")
        if user is None or fingerprint is None:
            return True  # not logged in yet: the login timeout deals with it
        owner = await repository.user_of_ssh_key(self.backend.reader, fingerprint, user.username)
        return owner is not None and owner[0].id == user.id

    async def close(self) -> None:
        """Stop listening, close every connection and end their TUIs' logins (server stopping)."""
        if self.acceptor is not None:
            self.acceptor.close()
        if self._watch is not None:
            self._watch.cancel()
        await asyncio.gather(
            *(self._cut(conn, "the server is stopping") for conn in list(self.connections))
        )
        for session_id, user_id in list(self.logins.items()):
            with contextlib.suppress(Exception):
                await self.backend.writer.submit(accounts.end_session_job(user_id, session_id))
        shutil.rmtree(self.folder, ignore_errors=True)

    async def listing(self, user: repository.UserAuth, as_json: bool) -> bytes:
        """The user's projects and their running experiments, by the API's visibility rules."""
        reader = self.backend.reader
        out = []
        scopes = {s.id: s for s in await repository.project_scopes_of(reader, user.id)}
        for project in await repository.projects_of(reader, user.id):
            scope = scopes.get(project.id)
            running = (
                _rows.decode(await repository.experiment_rows_json(reader, scope, "running"))
                if scope
                else []
            )
            out.append((project, running))
        now = self.backend.clock()
        if as_json:
            # Each running row says whether it is stalled, as the text does: a script could
            # not tell (its steps/s is that of steps long past).
            return (
                msgspec.json.encode(
                    [
                        {
                            "project": project,
                            "running": [
                                {**msgspec.structs.asdict(row), "stalled": is_stalled(row, now)}
                                for row in running
                            ],
                        }
                        for project, running in out
                    ]
                )
                + b"\n"
            )
        lines = []
        for project, running in out:
            lines.append(
                f"{printable(project.name)}  {printable(project.repo_url)}"
                + (f" ▸ {printable(project.subdir)}" if project.subdir else "")
                + f"  {project.experiments} experiment{'' if project.experiments == 1 else 's'},"
                f" {project.running} running"
            )
            lines.extend(
                f"  {'◌ stalled' if is_stalled(row, now) else '● running'}  {printable(row.name)}"
                f"  step {row.step if row.step is not None else '-'}"
                for row in running
            )
        if not lines:
            lines.append("No projects yet: point DVCLive at this server.")
        return ("\n".join(lines) + "\n").encode()

    def server_factory(self) -> asyncssh.SSHServer:
        return _KeyAuth(self)

    async def handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """One channel: the TUI, ``ls``, or a refusal."""
        connection = process.channel.get_connection()
        self.channels[connection] += 1
        self.quiet_since.pop(connection, None)
        try:
            await self._handle(process)
        finally:
            self.channels[connection] -= 1
            if self.channels[connection] <= 0:
                del self.channels[connection]
                if connection in self.connections:
                    self.quiet_since[connection] = self.backend.clock()

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            if process.subsystem is not None:
                process.stderr.write(
                    _lines(process, f"livestudio: no subsystem here.\n{USAGE}".encode())
                )
                process.exit(1)
                return
            if not await self._key_still_valid(process.channel.get_connection()):
                process.stderr.write(_lines(process, b"livestudio: this key no longer logs in.\n"))
                process.exit(1)
                return
            connection = process.channel.get_connection()
            user: repository.UserAuth = connection.get_extra_info("livestudio_user")
            if not connection.get_extra_info("livestudio_confirmed"):
                if not await self.confirm(process):
                    process.exit(1)
                    return
                connection.set_extra_info(livestudio_confirmed=True)
            try:
                words = shlex.split(process.command or "")
            except ValueError:
                words = ["?", "?"]  # unbalanced quotes: not a command we know
            if words[:1] == ["ls"] and set(words[1:]) <= {"--json"}:
                process.stdout.write(_lines(process, await self.listing(user, "--json" in words)))
                process.exit(0)
                return
            if len(words) > 1:
                process.stderr.write(_lines(process, USAGE.encode()))
                process.exit(1)
                return
            if process.get_terminal_type() is None:  # (`ssh HOST PROJECT` gives no terminal)
                process.stderr.write(
                    b"livestudio: the terminal UI needs `ssh -t`.\n" + USAGE.encode()
                )
                process.exit(1)
                return
            process.exit(await self.tui(process, user, words[0] if words else None))
        except (
            asyncssh.BreakReceived,
            asyncssh.SignalReceived,
            asyncssh.TerminalSizeChanged,
            BrokenPipeError,
        ):
            process.exit(1)

    async def confirm(self, process: asyncssh.SSHServerProcess[bytes]) -> bool:
        """A key's first session: its holder proves it theirs with the account's password."""
        connection = process.channel.get_connection()
        user: repository.UserAuth = connection.get_extra_info("livestudio_user")
        name = printable(user.username)
        if process.get_terminal_type() is None:
            process.stderr.write(
                f"livestudio: this key has not logged in as {name} yet: log in once with"
                " `ssh -t` and the account's password to prove it yours.\n".encode()
            )
            return False
        process.stdout.write(
            f"This key has not logged in as {name} yet: prove it yours.\r\n".encode()
        )
        fingerprint: str = connection.get_extra_info("livestudio_key")
        peer = connection.get_extra_info("peername")
        address = str(peer[0]) if peer else "ssh"
        backend = self.backend
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                typed = _LineReader(process)
                for _ in range(CONFIRM_TRIES):
                    process.stdout.write(f"Password for {name}: ".encode())
                    password = await typed.line()
                    if password is None:  # Ctrl-C, Ctrl-D, too long, gone
                        process.stdout.write(b"\r\n")
                        return False
                    await accounts.admit_password_try(
                        backend.logins, backend.reader, user.username, address, backend.clock()
                    )
                    try:
                        await accounts.login(backend.reader, user.username, password)
                    except NotAuthenticated:
                        process.stdout.write(b"Wrong password.\r\n")
                        continue
                    backend.logins.succeeded(user.username, address, backend.clock())
                    await backend.writer.submit(
                        accounts.remember_address_job(user.id, address, backend.clock())
                    )
                    if not await backend.writer.submit(
                        lambda ctx: repository.claim_ssh_key(
                            ctx.conn, user.id, fingerprint, backend.clock()
                        )
                    ):
                        process.stdout.write(
                            b"Another account proved this key theirs meanwhile, or the key"
                            b" was removed.\r\n"
                        )
                        return False
                    process.stdout.write(b"Key confirmed: it logs you in from now on.\r\n")
                    return True
        except RateLimited as exc:
            process.stdout.write(f"{exc.detail}\r\n".encode())
            return False
        except TimeoutError:
            process.stdout.write(b"\r\nToo slow: log in again to confirm the key.\r\n")
            return False
        process.stdout.write(b"Too many wrong passwords.\r\n")
        return False

    async def tui(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        user: repository.UserAuth,
        project: str | None,
    ) -> int:
        settings = self.backend.settings
        if self.sessions[user.id] >= settings.ssh_max_sessions:
            many = settings.ssh_max_sessions
            process.stderr.write(
                _lines(
                    process,
                    f"livestudio: you already have {many} session{'' if many == 1 else 's'}"
                    " open; close one first.\n".encode(),
                )
            )
            return 1
        self.sessions[user.id] += 1
        session_id = None
        conn = process.channel.get_connection()
        muted = self.terminals.setdefault(conn, {})[process] = asyncio.Event()
        try:
            try:
                token, session_id = await self.backend.writer.submit(
                    _ssh_session_job(user.id, self.listener)
                )
            except NotAuthenticated as exc:
                process.stderr.write(_lines(process, f"livestudio: {exc.detail}\n".encode()))
                return 1
            self.logins[session_id] = user.id
            # Its connections to the API come from this server's own address, as every
            # other SSH user's do: each TUI brings its own share of connections there.
            own_tuis[self.tuis_key] += 1
            try:
                return await run_tui(
                    process,
                    self.http_url,
                    public_url(settings, conn.get_extra_info("sockname")),
                    user.username,
                    token,
                    project,
                    settings.ssh_idle_timeout,
                    self.folder / uuid.uuid4().hex,
                    muted,
                )
            finally:
                own_tuis[self.tuis_key] -= 1
                if own_tuis[self.tuis_key] <= 0:
                    del own_tuis[self.tuis_key]
        finally:
            self.sessions[user.id] -= 1
            open_here = self.terminals.get(conn, {})
            open_here.pop(process, None)
            if not open_here:
                self.terminals.pop(conn, None)
            if session_id is not None:
                self.logins.pop(session_id, None)
                await self.backend.writer.submit(accounts.end_session_job(user.id, session_id))


class _CountedSession(asyncssh.SSHServerProcess[bytes]):
    """A session channel that says when it closes (``MAX_SESSIONS_PER_CONNECTION``)."""

    def __init__(self, service: SshService, closed: Callable[[], None]) -> None:
        super().__init__(service.handle, None, asyncssh.sftp.MIN_SFTP_VERSION, False)
        self._closed = closed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._closed()


class _KeyAuth(asyncssh.SSHServer):
    """Public keys registered for a user, and nothing else."""

    def __init__(self, service: SshService) -> None:
        self.service = service
        self.conn: asyncssh.SSHServerConnection | None = None
        self.sessions = 0
        """Session channels open on this connection."""
        self.address = ""
        self._refused: asyncssh.SSHServerConnection | None = None
        """This connection, when its address holds its share already."""
        self._offered: tuple[repository.UserAuth, str, bool] | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        service = self.service
        peer = conn.get_extra_info("peername")
        self.address = str(peer[0]) if peer else ""
        if not service.limit.admit(self.address):
            # Told why once the key exchange is done, when it asks to log in (closed at
            # once, OpenSSH spoke of "invalid characters" in a banner line, or of a
            # broken pipe); closed within seconds whatever it does, logged in never.
            self._refused = conn
            asyncio.get_running_loop().call_later(REFUSE_WITHIN, conn.close)
            return
        self.conn = conn
        service.connections.add(conn)
        service.quiet_since[conn] = service.backend.clock()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            service = self.service
            service.connections.discard(self.conn)
            service.quiet_since.pop(self.conn, None)
            service.limit.release(self.address)

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        if self.sessions >= MAX_SESSIONS_PER_CONNECTION:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"at most {MAX_SESSIONS_PER_CONNECTION} sessions on one connection",
            )
        self.sessions += 1
        return _CountedSession(self.service, self._session_closed)

    def _session_closed(self) -> None:
        self.sessions -= 1

    def begin_auth(self, username: str) -> bool:
        if self._refused is not None:
            self._refused.disconnect(
                asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many connections from your address"
            )
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return self._refused is None

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Called for the client's offer (no signature yet) and for the signed request:
        # nothing is recorded until auth_completed, once the signature was checked.
        if self._refused is not None:
            return False
        fingerprint = key.get_fingerprint("sha256")
        # A key not yet proven logs in only as an account that claims it, named by the
        # client: someone else's claim on your public key never takes your login over.
        found = await repository.user_of_ssh_key(self.service.backend.reader, fingerprint, username)
        self._offered = (found[0], fingerprint, found[1]) if found is not None else None
        return found is not None

    def auth_completed(self) -> None:
        if self.conn is None or self._offered is None:
            return
        user, fingerprint, confirmed = self._offered
        # Whatever name the client used, the key says who this is.
        self.conn.set_extra_info(
            livestudio_user=user, livestudio_key=fingerprint, livestudio_confirmed=confirmed
        )
        if not confirmed:  # recorded as used once its holder proves it theirs
            return
        backend = self.service.backend
        asyncio.get_running_loop().create_task(
            backend.writer.submit(
                lambda ctx: repository.touch_ssh_key(ctx.conn, fingerprint, backend.clock())
            )
        )


class _LineReader:
    """Lines typed at a session's terminal, not echoed."""

    def __init__(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.process = process
        self._after_cr = False
        """The last line ended with CR: a LF right after it ends no line (CR LF)."""

    async def line(self) -> str | None:
        """The next line; None if the user gave up (or typed more than a password holds)."""
        typed = bytearray()
        escape = False
        while True:
            try:
                key = await self.process.stdin.read(1)
            except asyncssh.TerminalSizeChanged:  # the window was resized meanwhile
                continue
            after_cr, self._after_cr = self._after_cr, False
            if not key or key in (b"\x03", b"\x04"):  # closed, Ctrl-C, Ctrl-D
                return None
            if escape:  # an arrow or function key's sequence: not typed text
                escape = not (b"@" <= key <= b"~") or key in (b"[", b"O")
                continue
            if key == b"\n" and after_cr and not typed:
                continue
            if key == b"\x1b":
                escape = True
            elif key in (b"\r", b"\n"):
                self._after_cr = key == b"\r"
                self.process.stdout.write(b"\r\n")
                return typed.decode("utf-8", "replace")
            elif key in (b"\x7f", b"\x08"):  # one character, however many bytes it took
                while typed and typed[-1] & 0xC0 == 0x80:
                    del typed[-1]
                del typed[-1:]
            else:
                typed += key
                if len(typed) > 1024:
                    self.process.stdout.write(b"\r\nThat is longer than any password here.")
                    return None


def _mark_alive(session_ids: list[int], now: float) -> Callable[[WriteContext], None]:
    """Mark these logins alive, and end the SSH logins nobody marked for long."""

    def job(ctx: WriteContext) -> None:
        repository.touch_ssh_sessions(ctx.conn, session_ids, now)
        repository.end_stale_ssh_sessions(ctx.conn, now - STALE_AFTER)

    return job


def _lines(process: asyncssh.SSHServerProcess[bytes], text: bytes) -> bytes:
    """Text for the client's terminal: with a pty (``ssh -t``), lines end in CR LF (a bare
    LF moved down without going back, each line starting where the last one ended)."""
    if process.get_terminal_type() is None:
        return text
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _prepare(folder: Path) -> None:
    # Whatever a server that did not stop cleanly left behind goes now.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)


def public_url(settings: Settings, reached: object) -> str:
    """The server's URL as an SSH client should use it: ``settings.public_url``, else the
    address the client reached (``sockname``) with the HTTP port (the TUIs told users on
    other machines to set DVC_STUDIO_URL to the server's own 127.0.0.1)."""
    if settings.public_url:
        return settings.public_url
    address = str(reached[0]) if isinstance(reached, tuple) and reached else "127.0.0.1"
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return f"http://{address}:{settings.port}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"http://{url_host(str(ip))}:{settings.port}"


def api_address(bind: str) -> str:
    """Where this server's TUIs reach its HTTP API, bound to ``bind`` (every interface:
    loopback)."""
    return "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind


async def start_ssh(backend: Backend) -> SshService:
    """Listen for SSH next to the HTTP API (``settings.ssh_port``)."""
    settings = backend.settings
    host = api_address(settings.host)
    # Its own: other servers on this host (the same database, or another one in the same
    # folder) keep theirs, and the logins they made.
    listener = f"{socket.gethostname()}:{settings.ssh_port}"
    # Absolute: the TUIs run in that folder, where a relative --db named nothing (every
    # session ended at once, "logged out").
    folder = settings.db.absolute().parent / "ssh-sessions" / str(settings.ssh_port)
    await asyncio.to_thread(_prepare, folder)
    await backend.writer.submit(lambda ctx: repository.end_ssh_sessions(ctx.conn, listener))
    await backend.writer.submit(_mark_alive([], backend.clock()))
    service = SshService(
        backend,
        f"http://{url_host(host)}:{settings.port}",
        folder,
        tuis_key=connection_key(host),
        listener=listener,
        limit=ConnectionLimit("SSH", settings.connections_per_address),
    )
    key = await asyncio.to_thread(host_key, settings.db)
    service.acceptor = await asyncssh.create_server(
        service.server_factory,
        settings.host,
        settings.ssh_port,
        server_host_keys=[key],
        encoding=None,
        line_editor=False,
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        sftp_factory=None,
        keepalive_interval=30,
        login_timeout=30,
    )
    service.start()
    log.info(
        "the TUI over SSH on %s:%d, host key %s",
        settings.host,
        settings.ssh_port,
        key.get_fingerprint("sha256"),
    )
    return service

"""Throttling of password guessing and of anonymous device-login requests.

Per client address, a sliding window: more than ``limit`` failures within ``window``
seconds and that address is refused (429 with ``Retry-After``) until the oldest failure
leaves the window. Per user: after a few failures from anywhere, each address must wait
twice as long as before between its tries for that user, at most ``max_delay`` — each
address on its own clock, so an attacker retrying from elsewhere does not use up the real
user's turn; and an address the user has logged in from before
skips the per-user delay altogether (the "device cookie" idea of OWASP's guidance, keyed
by address). Each new address would still get one free try, so guesses would grow with
the addresses an attacker holds: past ``user_cap`` failures within ``user_window`` the
user is refused to every address they have not logged in from (they still log in from
those). An IPv6 client counts by its /64, which one host can fill with addresses. A try is
counted when it is admitted, before the password is checked, so a burst of concurrent
tries is cut off at the limit and throttled tries cost no argon2 time.

State is bounded (oldest entries are forgotten first) and kept by each process; with
several processes, each tells the others of every try it admits (``on_record``, see
``backend.services.throttle_sync``), so the limits hold for the cluster as a whole.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.services.errors import RateLimited

MAX_ENTRIES = 100_000


def _bounded_set(entries: OrderedDict[object, object], key: object, value: object) -> None:
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > MAX_ENTRIES:
        entries.popitem(last=False)


@dataclass
class SlidingWindow:
    """At most ``limit`` events per key within ``window`` seconds."""

    limit: int
    window: float
    _events: OrderedDict[object, deque[float]] = field(default_factory=OrderedDict)
    on_record: Callable[[str, object, float], None] | None = None
    """Told of every event recorded here (to share it with other processes)."""

    def wait(self, key: object, now: float) -> float:
        """Seconds until ``key`` may act again (0 when it may now)."""
        events = self._events.get(key)
        if not events:
            return 0.0
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) < self.limit:
            return 0.0
        return events[0] + self.window - now

    def add(self, key: object, now: float) -> None:
        """Record one event of ``key``."""
        self.record(key, now)
        if self.on_record is not None:
            self.on_record("add", key, now)

    def record(self, key: object, now: float) -> None:
        """Record one event of ``key`` (also one another process reported)."""
        events = self._events.get(key) or deque(maxlen=self.limit)
        events.append(now)
        _bounded_set(self._events, key, events)  # type: ignore[arg-type]

    def forget_one(self, key: object) -> None:
        """Forget ``key``'s latest event (an attempt that turned out fine)."""
        events = self._events.get(key)
        if events:
            events.pop()


def client_key(address: str) -> str:
    """Whom an address stands for: itself, or for IPv6 its /64 (one host's share)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


@dataclass
class LoginThrottle:
    """Failed-login bookkeeping for one server process; see the module docstring."""

    address_limit: int = 10
    address_window: float = 60.0
    user_free_tries: int = 5
    user_window: float = 900.0
    max_delay: float = 30.0
    user_cap: int = 30
    _addresses: SlidingWindow = field(init=False)
    _users: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)
    _tries: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    _known: OrderedDict[tuple[str, str], float] = field(default_factory=OrderedDict)
    on_record: Callable[[str, tuple[str, str], float], None] | None = None
    """Told of every try admitted and every success (to share them with other processes)."""

    def __post_init__(self) -> None:
        self._addresses = SlidingWindow(self.address_limit, self.address_window)

    def attempt(
        self,
        username: str,
        address: str,
        now: float,
        known: bool = False,
        *,
        login: bool = False,
    ) -> None:
        """Admit one try, or raise ``RateLimited``; an admitted try counts as failed.

        ``known``: the database says the user logged in from this address before (what
        this process remembers is lost with a restart). ``login``: ``address`` is a login
        (session) of the user's, trying their current password: it keeps its own window
        and clock, and the per-user cap does not apply (it is there against guessing from
        ever more addresses; one login is one clock, and the cap would let a stolen login
        refuse the owner's own change, the remedy for it).

        Counting it before the password is checked is what makes a burst of concurrent
        tries count: each one is refused once the limit is reached, not after all of
        them were checked. A right password takes its try back (``succeeded``).
        """
        address = client_key(address)
        self._check_key(address, now, login)
        name = username.strip().lower()
        if not known and (name, address) not in self._known:
            wait = self._user_wait(name, address, now, capped=not login)
            if wait > 0:
                raise RateLimited(
                    f"Too many wrong passwords for {username!r}; try again in {_seconds(wait)} s."
                    if login
                    else f"Too many failed logins for {username!r}; try again in"
                    f" {_seconds(wait)} s (or from where you have logged in before).",
                    retry_after=wait,
                )
        self.record_try(name, address, now)
        if self.on_record is not None:
            self.on_record("try", (name, address), now)

    def check_address(self, address: str, now: float) -> None:
        """Refuse an address past its own limit (before anything reads the database)."""
        self._check_key(client_key(address), now)

    def _check_key(self, key: str, now: float, login: bool = False) -> None:
        wait = self._addresses.wait(key, now)
        if wait > 0:
            raise RateLimited(
                f"Too many wrong passwords from this login; try again in {_seconds(wait)} s."
                if login
                else f"Too many failed logins from your address; try again in {_seconds(wait)} s.",
                retry_after=wait,
            )

    def record_try(self, name: str, address: str, now: float) -> None:
        """Count one admitted try (also one another process admitted)."""
        self._addresses.record(address, now)
        failures, last = self._users.get(name, (0, 0.0))
        if now - last > self.user_window:
            failures = 0
        _bounded_set(self._users, name, (failures + 1, now))  # type: ignore[arg-type]
        _bounded_set(self._tries, (name, address), now)  # type: ignore[arg-type]

    def _user_wait(self, name: str, address: str, now: float, capped: bool = True) -> float:
        """How long this address must still wait before its next try for this user.

        The delay grows with the user's failures from anywhere, but each address keeps its
        own clock: an attacker retrying from elsewhere never uses up the real user's turn.
        """
        failures, last = self._users.get(name, (0, 0.0))
        if failures < self.user_free_tries or now - last > self.user_window:
            return 0.0
        if capped and failures >= self.user_cap:
            return last + self.user_window - now
        previous = self._tries.get((name, address))
        if previous is None:
            return 0.0
        delay = min(self.max_delay, 2.0 ** (failures - self.user_free_tries))
        return max(0.0, previous + delay - now)

    def succeeded(self, username: str, address: str, now: float, *, known: bool = True) -> None:
        """A right password: the try is taken back and (``known``) this address is known
        to be theirs."""
        address = client_key(address)
        name = username.strip().lower()
        self.record_success(name, address, now, known=known)
        if self.on_record is not None:
            self.on_record("ok" if known else "back", (name, address), now)

    def record_success(self, name: str, address: str, now: float, *, known: bool = True) -> None:
        """Take a try back and know the address (also another process's success)."""
        self._users.pop(name, None)
        self._addresses.forget_one(address)
        if known:
            _bounded_set(self._known, (name, address), now)  # type: ignore[arg-type]

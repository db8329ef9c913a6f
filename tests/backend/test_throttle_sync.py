"""What one process's throttle tells another's: tries, successes, and tries taken back."""

from __future__ import annotations

from typing import Any, cast

import pytest

from backend.services.errors import RateLimited
from backend.services.throttle import LoginThrottle, SlidingWindow
from backend.services.throttle_sync import ThrottleSync


class _Wire:
    """The Redis channel between the two processes, delivering at once."""

    def __init__(self) -> None:
        self.peers: list[ThrottleSync] = []

    def publish(self, data: bytes, channel: str) -> None:
        for peer in self.peers:
            peer.apply(data)


def _processes() -> tuple[LoginThrottle, LoginThrottle]:
    wire = _Wire()
    first, second = LoginThrottle(), LoginThrottle()
    for throttle in (first, second):
        wire.peers.append(ThrottleSync(cast(Any, wire), throttle, SlidingWindow(30, 600.0)))
    return first, second


def test_a_password_change_taken_back_on_one_process_leaves_no_known_key_on_another() -> None:
    first, second = _processes()
    key = "account 7"
    for at in range(5):
        first.attempt("alice", key, float(at))
    second.attempt("alice", key, 5.0)  # the sixth failure, counted on both
    with pytest.raises(RateLimited):
        first.attempt("alice", key, 5.5)
    second.succeeded("alice", key, 6.0, known=False)  # a right password, on the other
    first.attempt("alice", key, 6.5)  # her failures were taken back there too
    for at in range(4):  # a minute on: five failures since, on both
        second.attempt("alice", key, 100.0 + at)
    with pytest.raises(RateLimited, match="alice"):  # the key never became one to trust
        first.attempt("alice", key, 103.5)


def test_a_login_success_on_one_process_makes_the_address_known_on_another() -> None:
    first, second = _processes()
    second.succeeded("alice", "10.0.0.1", 0.0)
    for at in range(8):  # past the per-user free tries: known addresses are not delayed
        first.attempt("alice", "10.0.0.1", 1.0 + at * 0.01)


def test_a_window_counted_for_a_login_says_so() -> None:
    throttle = LoginThrottle(user_free_tries=100)
    for at in range(10):
        throttle.attempt("alice", "login 7", float(at), login=True)
    with pytest.raises(RateLimited, match="from this login; try again"):
        throttle.attempt("alice", "login 7", 10.0, login=True)
    throttle.attempt("alice", "login 8", 10.0, login=True)  # another login's clock


def test_a_stolen_login_past_the_user_cap_leaves_the_owners_login_its_turn() -> None:
    """The per-user cap (30 failures in 15 minutes) refused the owner's own password
    change, the remedy for a stolen login, for 15 minutes out of every 25."""
    throttle = LoginThrottle()
    at = 0.0
    failed = 0
    while failed < 40:  # the stolen login, waiting out every delay
        try:
            throttle.attempt("alice", "login 7", at, login=True)
            failed += 1
        except RateLimited as refused:
            assert "wrong passwords" in refused.detail and "logged in before" not in refused.detail
            at += refused.retry_after
        at += 0.01
    throttle.attempt("alice", "login 8", at, login=True)  # the owner's own login
    with pytest.raises(RateLimited, match="logged in before"):  # logins are still capped
        throttle.attempt("alice", "10.0.0.9", at)

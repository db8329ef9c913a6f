"""How many connections one client may hold: by address, an IPv6 host by its /64."""

from __future__ import annotations

from collections import Counter

from backend.connection_limits import ConnectionLimit
from shared.api import TUI_CONNECTIONS


def test_an_ipv6_host_counts_by_its_slash_64_and_an_ipv4_address_by_itself() -> None:
    limit = ConnectionLimit("HTTP", 2)
    assert limit.admit("2001:db8::1") and limit.admit("2001:db8::2")
    assert not limit.admit("2001:db8::ffff:3")  # the same /64: a third address is no way out
    assert limit.admit("2001:db8:0:1::1")  # another /64
    assert limit.admit("10.0.0.1") and limit.admit("10.0.0.1") and not limit.admit("10.0.0.1")
    assert limit.admit("10.0.0.2")
    limit.release("2001:db8::2")
    assert limit.admit("2001:db8::9")
    for address in ("2001:db8::1", "2001:db8::9", "2001:db8:0:1::1", "10.0.0.1", "10.0.0.1"):
        limit.release(address)
    limit.release("10.0.0.2")
    assert not limit.open


def test_each_tui_open_from_an_address_adds_its_connections_to_the_share() -> None:
    tuis: Counter[str] = Counter()
    limit = ConnectionLimit("HTTP", 1, tuis=tuis)
    assert limit.admit("127.0.0.1") and not limit.admit("127.0.0.1")
    tuis["loopback"] += 1
    assert all(limit.admit("127.0.0.1") for _ in range(TUI_CONNECTIONS))
    assert not limit.admit("127.0.0.1") and not limit.admit("127.0.0.2")  # (one host)
    assert limit.admit("10.0.0.2")


def test_the_tuis_allowance_holds_for_any_loopback_bind_and_a_whole_slash_64() -> None:
    """Filed under the bind (127.0.0.2, localhost), the allowance never met the TUIs'
    connections, which come from 127.0.0.1; filed under one IPv6 address, the TUIs filled
    the share of every other host of the server's /64."""
    from backend.connection_limits import connection_key

    assert (
        connection_key("127.0.0.2")
        == connection_key("127.0.0.1")
        == connection_key("::1")
        == "loopback"
    )
    assert connection_key("::ffff:127.0.0.1") == "loopback"
    tuis: Counter[str] = Counter({connection_key("127.0.0.2"): 1})
    limit = ConnectionLimit("HTTP", 1, tuis=tuis)
    assert all(limit.admit("127.0.0.1") for _ in range(1 + TUI_CONNECTIONS))
    tuis = Counter({connection_key("2001:db8::2"): 1})
    limit = ConnectionLimit("HTTP", 1, tuis=tuis)
    assert all(limit.admit("2001:db8::2") for _ in range(TUI_CONNECTIONS))
    assert limit.admit("2001:db8::77")  # the rest of the /64 keeps its own share


def test_every_loopback_address_shares_one_count_with_the_tuis_allowance() -> None:
    """Counted apart, each loopback address got its own share plus the TUIs' allowance:
    five of them held five times what the README said."""
    limit = ConnectionLimit("HTTP", 2, tuis=Counter({"loopback": 1}))
    sources = ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "127.0.0.3"]
    admitted = [limit.admit(sources[i % len(sources)]) for i in range(20)]
    assert admitted.count(True) == 2 + TUI_CONNECTIONS

from __future__ import annotations

import pytest

from botserver.config import ConfigError, parse_networks
from botserver.proxies import client_address

TRUSTED = parse_networks(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])


def scope(peer: str, *forwarded: str) -> dict:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_the_peer_is_the_client_without_trusted_proxies() -> None:
    assert client_address(scope("198.51.100.9", "203.0.113.1"), ()) == "198.51.100.9"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_address(scope("198.51.100.9", "203.0.113.1"), TRUSTED) == "198.51.100.9"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    assert client_address(scope("10.0.0.1", "203.0.113.1"), TRUSTED) == "203.0.113.1"
    # Client-written hops further left are ignored.
    forged = scope("10.0.0.1", "1.1.1.1, 203.0.113.1, 192.0.2.7")
    assert client_address(forged, TRUSTED) == "203.0.113.1"
    # Several headers read as one list.
    split = scope("10.0.0.1", "1.1.1.1, 203.0.113.1", "10.9.9.9")
    assert client_address(split, TRUSTED) == "203.0.113.1"


def test_ipv6_and_garbage_hops() -> None:
    assert client_address(scope("2001:db8::1", "2001:db9::5"), TRUSTED) == "2001:db9::5"
    # Garbage where a proxy should have written an address: stop at the last good hop.
    assert client_address(scope("10.0.0.1", "203.0.113.1, junk"), TRUSTED) == "10.0.0.1"
    # Only trusted hops: the left-most of them is as close to the client as we can get.
    assert client_address(scope("10.0.0.1", "10.0.0.2"), TRUSTED) == "10.0.0.2"
    assert client_address(scope("10.0.0.1"), TRUSTED) == "10.0.0.1"


def test_bad_entries_are_refused() -> None:
    with pytest.raises(ConfigError):
        parse_networks(["not-an-address"])

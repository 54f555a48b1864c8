"""The client's address, believing `X-Forwarded-For` only from configured trusted proxies."""

from __future__ import annotations

import ipaddress

from starlette.types import Scope

from botserver.config import Network


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The peer's address, or the right-most untrusted `X-Forwarded-For` hop behind a proxy.

    Each proxy appends the address it received the request from, so hops are
    read from the right: while a hop is itself a trusted proxy, keep going
    left. Anything further left was written by the client and is ignored.
    """
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer

    values = [
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
    ]
    hops = [hop.strip() for hop in ",".join(values).split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        if not _valid_ip(hop):
            break
        address = hop
        if not _is_trusted(hop, trusted):
            break
    return address

"""A client's address as rate limits see it. Total functions: whatever a client (or a proxy it
talks through) puts in its address, they answer a short key and never raise, so no request's
content can make a limit fail."""

from __future__ import annotations

import ipaddress

UNPARSED = "unparsed"  # one key for every address that is not an IP address


def _parse(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped  # a dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d
    return parsed


def _key(address: str | None, ipv6_prefix: int) -> str:
    parsed = _parse(address)
    if parsed is None:
        # Not an address (only a misconfigured proxy passes one on): all such share one key,
        # so varying the garbage never buys a fresh budget.
        return UNPARSED
    if parsed.version == 4:
        return str(parsed)
    network = ipaddress.IPv6Network(
        (int(parsed) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix)
    )
    return str(network)  # the scope (fe80::1%eth0) is dropped with the host bits


def client_key(address: str | None) -> str:
    """One client: an IPv4 address, or an IPv6 /64 (one household or server gets a whole /64,
    so the addresses in it are free to rotate)."""
    return _key(address, 64)


def client_site(address: str | None) -> str:
    """The site a client is at: an IPv4 address, or an IPv6 /48 (what one customer is commonly
    given, and what a tunnel broker hands anyone for free), for deciding whether a client is new
    to an account."""
    return _key(address, 48)

"""Which addresses a webhook may connect to: public unicast addresses only.

Webhook URLs are chosen by customers, so without this any tenant could make Mailroom's network
reach what only Mailroom should reach (the instance metadata service at 169.254.169.254, VPC
endpoints, loopback services). The check runs on every resolved address at connect time (see
``mailroom.webhook_http``), so a name that resolves to a public address when the webhook is created
and to a private one later (DNS rebinding) is still refused.

Refused: unspecified, loopback, private (RFC 1918, IPv6 unique local), shared address space /
CGNAT (100.64.0.0/10), link-local, multicast, reserved and documentation/benchmark ranges, IPv4-
mapped IPv6 (``::ffff:a.b.c.d``: a way to spell an IPv4 address that filters often miss), and
addresses embedding a non-public IPv4 address (6to4, NAT64), and Teredo tunnels. Anything else Python's
``ipaddress`` does not call global is refused too.
"""

from __future__ import annotations

import ipaddress
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4: Final[tuple[tuple[str, str], ...]] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_V6: Final[tuple[tuple[str, str], ...]] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "ipv4_mapped"),
    ("::/96", "reserved"),  # IPv4-compatible (deprecated)
    ("100::/64", "reserved"),
    ("2001:db8::/32", "reserved"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link_local"),
    ("fec0::/10", "link_local"),
    ("ff00::/8", "multicast"),
)
_NAT64: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_V4_NETWORKS = tuple((ipaddress.IPv4Network(net), reason) for net, reason in _V4)
_V6_NETWORKS = tuple((ipaddress.IPv6Network(net), reason) for net, reason in _V6)


def block_reason(address: IPAddress | str) -> str | None:
    """Why ``address`` may not be connected to (``private``, ``loopback``, ...), or None if it may."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_reason(ip)
    if ip.scope_id:
        return "link_local"  # a zone index (fe80::1%eth0) only makes sense on a local link
    for network, reason in _V6_NETWORKS:
        if ip in network:
            return reason
    if ip.teredo is not None:
        return "reserved"  # a tunnel to whatever the embedded client address is: never a webhook host
    embedded = _embedded_v4(ip)
    if embedded is not None:
        inner = _v4_reason(embedded)
        return f"embedded_{inner}" if inner else None
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "reserved"
    return None


def _v4_reason(ip: ipaddress.IPv4Address) -> str | None:
    for network, reason in _V4_NETWORKS:
        if ip in network:
            return reason
    if not ip.is_global:
        return "reserved"
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 address leads to (traffic ends up there)."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    for network in _NAT64:
        if ip in network:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress | str) -> bool:
    return block_reason(address) is None

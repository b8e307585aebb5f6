"""Free loopback ports for the servers tests start (the local stack, nsd, Dovecot).

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same range every
outgoing connection's source port is drawn from: with three workers talking HTTP to their emulators,
such a port is often taken again between the probe and the server's own bind ("address already in
use"). Ports are drawn instead at random below the ephemeral range, where nothing is assigned
implicitly, and checked free for TCP (and UDP where the server needs both).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _ephemeral_start() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _free(port: int, kinds: tuple[socket.SocketKind, ...]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port(*, udp: bool = False) -> int:
    """A loopback port free for TCP (and for UDP too with ``udp=True``), outside the ephemeral range."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    top = _ephemeral_start()
    if top - _LOWEST < 1_000:  # an unusual range: fall back to the kernel's choice
        with socket.socket(socket.AF_INET, kinds[0]) as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    draw = random.SystemRandom()
    for _ in range(200):
        port = draw.randrange(_LOWEST, top)
        if _free(port, kinds):
            return port
    raise RuntimeError(f"no free loopback port between {_LOWEST} and {top}")

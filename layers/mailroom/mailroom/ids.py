"""Opaque ids: a type prefix and a ULID (48-bit millisecond time + 80 random bits, Crockford base32).

They are unguessable (80 bits from ``secrets``), sortable by creation time, and say what they name
(``tok_01J...``, ``aud_01J...``).
"""

from __future__ import annotations

import re
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


def ulid(at_ms: int | None = None, *, randomness: int | None = None) -> str:
    millis = int(time.time() * 1000) if at_ms is None else at_ms
    rand = secrets.randbits(80) if randomness is None else randomness
    return _encode(millis, 10) + _encode(rand, 16)


def ulid_bound(at_ms: int, *, upper: bool) -> str:
    """The smallest (or largest) ULID of a millisecond: for time-range key conditions."""
    return ulid(at_ms, randomness=(1 << 80) - 1 if upper else 0)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def is_id(value: str, prefix: str) -> bool:
    head, sep, tail = value.partition("_")
    return sep == "_" and head == prefix and bool(_ULID_RE.match(tail))

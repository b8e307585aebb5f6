"""Mailbox passwords: the policy they must meet and the slow salted hash they are stored as.

Hash format (one string, self-describing so the cost can be raised later without a migration):
``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``. scrypt is in the standard library, memory-hard, and
at n=2**14, r=8, p=1 (16 MiB) costs ~50 ms on a laptop core and a few times that on a 512 MB
Lambda: slow for an attacker holding a stolen table, fast enough for a bulk create of 25 mailboxes.
``needs_rehash`` tells the sign-in to upgrade a hash made with weaker parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MIN_LENGTH = 10
MAX_LENGTH = 256
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
_SCHEME = "scrypt"
# Any stored parameters up to this memory bound are accepted (128 * n * r bytes, plus slack).
_MAX_MEMORY = 256 * 1024 * 1024


class WeakPassword(ValueError):
    """The password breaks the policy; the message says which rule (never echoes the password)."""


def check_policy(password: str, *, local_part: str | None = None) -> None:
    """Raise WeakPassword unless: 10 to 256 characters, at least two character classes
    (lower, upper, digit, other), and not containing the mailbox's local part."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_LENGTH} characters")
    classes = {
        "lower": any(c.islower() for c in password),
        "upper": any(c.isupper() for c in password),
        "digit": any(c.isdigit() for c in password),
        "other": any(not c.isalnum() for c in password),
    }
    if sum(classes.values()) < 2:
        raise WeakPassword("password must mix at least two of: lower case, upper case, digits, symbols")
    if len(set(password)) < 4:
        raise WeakPassword("password must not be a repetition of a few characters")
    if local_part and len(local_part) >= 3 and local_part.lower() in password.lower():
        raise WeakPassword("password must not contain the mailbox's local part")


@dataclass(frozen=True, slots=True)
class _Parsed:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_MAX_MEMORY
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"{_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> _Parsed | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        return _Parsed(n=n, r=r, p=p, salt=_unb64(parts[4]), digest=_unb64(parts[5]))
    except ValueError:
        return None


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check. With no (or an unreadable) stored hash it still spends one hash's time,
    so a caller cannot tell "no such mailbox" from "wrong password" by timing."""
    parsed = _parse(stored) if stored else None
    if parsed is None:
        _scrypt(password, b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
        return False
    candidate = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.digest))
    return hmac.compare_digest(candidate, parsed.digest)


def needs_rehash(stored: str) -> bool:
    parsed = _parse(stored)
    return parsed is None or (parsed.n, parsed.r, parsed.p) < (SCRYPT_N, SCRYPT_R, SCRYPT_P)

"""API token format: ``<prefix><secret><checksum>``.

* prefix says the type: ``mr_live_`` (ops) or ``mr_msg_`` (message, bound to one mailbox);
* secret is 32 base62 characters from ``secrets`` (~190 bits);
* checksum is the CRC32 of prefix + secret in 6 base62 characters, so a mistyped or truncated
  token is rejected without touching the database (the idea GitHub uses for its tokens).

Only the SHA-256 of the whole token is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6


class TokenType(StrEnum):
    OPS = "ops"
    MESSAGE = "message"


PREFIXES: dict[TokenType, str] = {TokenType.OPS: "mr_live_", TokenType.MESSAGE: "mr_msg_"}


def _base62(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 62)
        chars.append(_BASE62[index])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    plaintext: str
    token_hash: str
    token_type: TokenType

    @property
    def prefix(self) -> str:
        return PREFIXES[self.token_type]

    @property
    def last_four(self) -> str:
        return self.plaintext[-4:]


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def issue_token(token_type: TokenType) -> IssuedToken:
    secret = "".join(secrets.choice(_BASE62) for _ in range(SECRET_LENGTH))
    body = PREFIXES[token_type] + secret
    plaintext = body + _checksum(body)
    return IssuedToken(plaintext=plaintext, token_hash=hash_token(plaintext), token_type=token_type)


def parse_token(candidate: str) -> TokenType | None:
    """The token's type if it is well formed with a valid checksum, else None."""
    for token_type, prefix in PREFIXES.items():
        if not candidate.startswith(prefix):
            continue
        rest = candidate[len(prefix) :]
        if len(rest) != SECRET_LENGTH + CHECKSUM_LENGTH or any(c not in _BASE62 for c in rest):
            return None
        body, checksum = candidate[:-CHECKSUM_LENGTH], candidate[-CHECKSUM_LENGTH:]
        return token_type if secrets.compare_digest(_checksum(body), checksum) else None
    return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None

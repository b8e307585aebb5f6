"""API token format: ``<prefix><secret><checksum>``.

* prefix says the type: ``mr_live_`` (ops), ``mr_msg_`` (message, bound to one mailbox) or
  ``inai_`` (an organization-wide API key of the ``/api/v0`` surface, agentmail-v0-api.txt);
* secret is 32 base62 characters from ``secrets`` (~190 bits);
* checksum is the CRC32 of prefix + secret in 6 base62 characters, so a mistyped or truncated
  token is rejected without touching the database (the idea GitHub uses for its tokens).

API keys put 4 more random characters and an underscore between prefix and secret
(``inai_AbC1_<secret><checksum>``): the v0 reference lists keys by a ``prefix`` shaped
``inai_xxxx_...``, and those 4 characters let a person tell keys apart without the secret.

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
HINT_LENGTH = 4  # API keys only: the public part of ``inai_xxxx_``


class TokenType(StrEnum):
    OPS = "ops"
    MESSAGE = "message"
    API_KEY = "api_key"


PREFIXES: dict[TokenType, str] = {
    TokenType.OPS: "mr_live_",
    TokenType.MESSAGE: "mr_msg_",
    TokenType.API_KEY: "inai_",
}


def _hint_length(token_type: TokenType) -> int:
    """Characters (hint and its underscore) between the prefix and the secret."""
    return HINT_LENGTH + 1 if token_type is TokenType.API_KEY else 0


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

    @property
    def display_prefix(self) -> str:
        """What a listing may show: the type prefix and, for API keys, the hint (``inai_AbC1_...``)."""
        return self.plaintext[: len(self.prefix) + _hint_length(self.token_type)] + "..."


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _random(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def issue_token(token_type: TokenType) -> IssuedToken:
    hint = f"{_random(HINT_LENGTH)}_" if _hint_length(token_type) else ""
    body = PREFIXES[token_type] + hint + _random(SECRET_LENGTH)
    plaintext = body + _checksum(body)
    return IssuedToken(plaintext=plaintext, token_hash=hash_token(plaintext), token_type=token_type)


def parse_token(candidate: str) -> TokenType | None:
    """The token's type if it is well formed with a valid checksum, else None."""
    for token_type, prefix in PREFIXES.items():
        if not candidate.startswith(prefix):
            continue
        rest = candidate[len(prefix) :]
        hint_length = _hint_length(token_type)
        if hint_length:
            if rest[HINT_LENGTH:hint_length] != "_":
                return None
            rest = rest[:HINT_LENGTH] + rest[hint_length:]  # the hint is base62 like the secret
        expected = (HINT_LENGTH if hint_length else 0) + SECRET_LENGTH + CHECKSUM_LENGTH
        if len(rest) != expected or any(c not in _BASE62 for c in rest):
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

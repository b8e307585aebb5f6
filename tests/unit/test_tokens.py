"""Token format: prefix, randomness, checksum, hashing."""

from __future__ import annotations

import hashlib
import math

import pytest

from mailroom.domain.tokens import (
    PREFIXES,
    SECRET_LENGTH,
    TokenType,
    bearer_token,
    hash_token,
    issue_token,
    parse_token,
)


@pytest.mark.parametrize("token_type", list(TokenType))
def test_issued_tokens_parse_back_to_their_type(token_type: TokenType) -> None:
    issued = issue_token(token_type)
    assert issued.plaintext.startswith(PREFIXES[token_type])
    assert parse_token(issued.plaintext) is token_type
    assert issued.token_hash == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert issued.last_four == issued.plaintext[-4:]


def test_secrets_carry_at_least_128_bits() -> None:
    assert SECRET_LENGTH * math.log2(62) >= 128
    assert len({issue_token(TokenType.OPS).plaintext for _ in range(200)}) == 200


def test_every_single_character_typo_is_caught_by_the_checksum() -> None:
    token = issue_token(TokenType.OPS).plaintext
    prefix_length = len(PREFIXES[TokenType.OPS])
    for position in range(prefix_length, len(token)):
        for replacement in "0aZ":
            if token[position] == replacement:
                continue
            typo = token[:position] + replacement + token[position + 1 :]
            assert parse_token(typo) is None, (position, replacement)


@pytest.mark.parametrize(
    "candidate",
    ["", "mr_live_", "mr_live_abc", "tm_live_" + "a" * 38, "mr_live_" + "!" * 38, "MR_LIVE_" + "a" * 38],
)
def test_malformed_tokens_are_rejected(candidate: str) -> None:
    assert parse_token(candidate) is None


def test_truncated_and_extended_tokens_are_rejected() -> None:
    token = issue_token(TokenType.MESSAGE).plaintext
    assert parse_token(token[:-1]) is None
    assert parse_token(token + "x") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        (None, None),
        ("", None),
    ],
)
def test_bearer_header_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_hash_is_sha256_hex() -> None:
    assert hash_token("x") == hashlib.sha256(b"x").hexdigest()


def test_api_keys_carry_a_public_hint_and_a_checksummed_secret() -> None:
    issued = issue_token(TokenType.API_KEY)
    key = issued.plaintext
    assert key.startswith("inai_") and key[9] == "_" and len(key) == 10 + SECRET_LENGTH + 6
    assert issued.display_prefix == key[:10] + "..."  # the reference's "inai_xxxx_..." shape
    assert parse_token(key) is TokenType.API_KEY
    for position in range(len("inai_"), len(key)):
        replacement = "0" if key[position] != "0" else "1"
        assert parse_token(key[:position] + replacement + key[position + 1 :]) is None, position


@pytest.mark.parametrize(
    "candidate",
    ["inai_", "inai_abcd_", "inai_abcd" + "a" * 39, "inai_ab_d_" + "a" * 38, "inai_abcd_" + "!" * 38],
)
def test_malformed_api_keys_are_rejected(candidate: str) -> None:
    assert parse_token(candidate) is None

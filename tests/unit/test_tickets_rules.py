"""Support tickets, the pure part (domain/tickets.py): the support API's signature against vectors
computed here independently, its refusals, the reply address, and what an emailed answer says."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain import tickets as rules
from mailroom.domain.tickets import Refusal, SignatureRefused

SECRET = "kq3N8vT2xL9pR4mW7yB1cF6hJ0sD5gZa"
NOW = 1_796_000_000
BODY = b'{"ticket_id":"tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV","body":"Hello"}'
PATH = "/api/v1/support/reply"


def reference_signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """What an operator's pipeline in any language computes (docs/tickets.md)."""
    content = timestamp.encode() + b"." + method.encode() + b"." + path.encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest()


def check(**changes: object) -> str:
    request: dict[str, object] = {
        "timestamp": str(NOW),
        "signature": reference_signature(SECRET, str(NOW), "POST", PATH, BODY),
        "method": "POST",
        "path": PATH,
        "body": BODY,
        "now": float(NOW),
    }
    request.update(changes)
    secret = str(request.pop("secret", SECRET))
    return rules.verify(secret, **request)  # type: ignore[arg-type]


def refusal(**changes: object) -> Refusal:
    with pytest.raises(SignatureRefused) as refused:
        check(**changes)
    return refused.value.reason


def test_a_good_signature_is_accepted_and_names_its_nonce() -> None:
    expected = reference_signature(SECRET, str(NOW), "POST", PATH, BODY)
    assert rules.sign(SECRET, str(NOW), "POST", PATH, BODY) == expected
    assert check() == expected.removeprefix("v1=")
    assert check(signature=expected.upper().replace("V1=", "v1=")) == expected.removeprefix("v1=")
    # Anywhere within five minutes either side of now (clocks drift).
    for skew in (-rules.REPLAY_WINDOW_SECONDS, rules.REPLAY_WINDOW_SECONDS):
        stamp = str(NOW + skew)
        assert check(timestamp=stamp, signature=reference_signature(SECRET, stamp, "POST", PATH, BODY))


def test_stale_tampered_missing_and_malformed_signatures_are_refused() -> None:
    late = str(NOW - rules.REPLAY_WINDOW_SECONDS - 1)
    assert refusal(timestamp=late, signature=reference_signature(SECRET, late, "POST", PATH, BODY)) is (
        Refusal.STALE
    )
    assert refusal(body=BODY.replace(b"Hello", b"Hullo")) is Refusal.MISMATCH
    assert refusal(path="/api/v1/support/messages/tkm_X", method="DELETE", body=b"") is Refusal.MISMATCH
    assert refusal(method="PUT") is Refusal.MISMATCH
    assert refusal(timestamp=str(NOW + 1)) is Refusal.MISMATCH  # the timestamp is signed too
    assert refusal(secret=SECRET[::-1]) is Refusal.MISMATCH
    assert refusal(signature=None) is Refusal.MISSING
    assert refusal(timestamp="") is Refusal.MISSING
    assert refusal(signature="sha256=" + "0" * 64) is Refusal.MALFORMED
    assert refusal(timestamp="1.5e9") is Refusal.MALFORMED
    assert refusal(secret="") is Refusal.DISABLED
    assert refusal(secret="too-short") is Refusal.DISABLED


@settings(max_examples=40, derandomize=True)
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0, max_value=199))
def test_any_changed_byte_of_the_body_is_refused(body: bytes, flip: int) -> None:
    signature = reference_signature(SECRET, str(NOW), "POST", PATH, body)
    assert check(body=body, signature=signature)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
        assert refusal(body=tampered, signature=signature) is Refusal.MISMATCH


def test_a_reply_address_names_its_ticket_and_token_only_on_the_platform_domain() -> None:
    token = rules.new_reply_token()
    address = rules.reply_address("tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV", token, "mail.example.com")
    assert address == f"ticket+01arz3ndektsv4rrffq69g5fav-{token}@mail.example.com"
    assert len(address.partition("@")[0]) <= 64
    parsed = rules.parse_reply_address(address.upper(), "mail.example.com")
    assert parsed == rules.ReplyAddress("tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV", token)
    assert rules.parse_reply_address(address, "other.example.com") is None
    assert rules.parse_reply_address("ticket+short-abc@mail.example.com", "mail.example.com") is None
    assert rules.parse_reply_address("someone@mail.example.com", "mail.example.com") is None
    assert rules.token_matches(token, token) and not rules.token_matches(token, "a" * 16)


@pytest.mark.parametrize(
    "answer",
    [
        # Gmail: the attribution wraps before the address.
        "Publish the selector.\n\nOn Mon, Dec 7, 2026 at 3:10 PM Acme (Mailroom ticket) <\n"
        "ticket+x@mail.example.com> wrote:\n\n> ##- Reply above this line -##\n>\n> Help\n",
        # Apple Mail, on one line.
        "Publish the selector.\n\nOn 7 Dec 2026, at 15:10, Acme <ticket+x@mail.example.com> wrote:\n"
        "\n> Help\n",
        # Outlook.
        "Publish the selector.\r\n\r\n-----Original Message-----\r\nFrom: Acme\r\nSubject: Help\r\n\r\nHelp",
        # A client that quotes without an attribution: our marker still ends the answer.
        "Publish the selector.\n\n##- Reply above this line -##\n\nHelp",
        # Only trailing quoted lines.
        "Publish the selector.\n> Help\n>\n",
    ],
)
def test_an_emailed_answer_is_the_text_above_the_quoted_thread(answer: str) -> None:
    assert rules.reply_text(answer) == "Publish the selector."


def test_an_answer_that_quotes_in_between_keeps_its_own_lines() -> None:
    text = "> Is DKIM broken?\nYes: publish the selector.\n\nThanks"
    assert rules.reply_text(text) == text

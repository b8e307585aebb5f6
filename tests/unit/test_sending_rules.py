"""The pure parts of sending: how composing and SES failures become API errors, SES's Message-ID
rewrite, labels, the initial delivery record."""

from __future__ import annotations

import pytest

from mailroom.api.errors import status_of
from mailroom.mail.compose import ComposeError, Draft, compose
from mailroom.services import sending
from mailroom.store.errors import classify


def error_of(draft: Draft) -> ComposeError:
    with pytest.raises(ComposeError) as caught:
        compose(draft)
    return caught.value


SENDER, TO = "a@example.com", ["b@example.com"]


@pytest.mark.parametrize(
    ("draft", "field", "code"),
    [
        (Draft(sender=SENDER, to=TO, subject="x\ry"), "subject", "validation_error"),
        (Draft(sender=SENDER, to=["b@example.com\n"]), "to", "validation_error"),
        (Draft(sender=SENDER, to=TO, headers={"Subject": "x"}), "headers", "reserved_header"),
        (Draft(sender=SENDER, to=[f"r{i}@example.com" for i in range(51)]), "to", "too_many_recipients"),
        (Draft(sender=SENDER, to=TO, headers={"X-A": "\x00"}), "headers.X-A", "validation_error"),
    ],
)
def test_compose_errors_become_422_with_their_field(draft: Draft, field: str, code: str) -> None:
    original = error_of(draft)
    error = sending.compose_error(original)
    assert (status_of(error), error.code) == (422, code)
    assert error.fields == [{"field": field, "message": original.message}]
    assert error.message == original.message


def test_the_recipient_limit_is_stated() -> None:
    error = sending.compose_error(
        error_of(Draft(sender="a@example.com", to=[f"r{i}@x.org" for i in range(60)]))
    )
    assert "at most 50 recipients" in error.message and "got 60" in error.message


@pytest.mark.parametrize(
    ("code", "status", "api_code", "retryable"),
    [
        ("MessageRejected", 422, "send_rejected", False),
        ("MailFromDomainNotVerifiedException", 422, "send_rejected", False),
        ("TooManyRequestsException", 503, "send_throttled", True),
        ("Throttling", 503, "send_throttled", True),
        ("SendingPausedException", 503, "sending_paused", True),
        ("InternalFailure", 502, "ses_unavailable", True),
    ],
)
def test_ses_failures_map_to_api_errors(code: str, status: int, api_code: str, retryable: bool) -> None:
    error = sending.ses_error(
        classify(code, "Email address is not verified.", service="sesv2", operation="send_email")
    )
    assert (status_of(error), error.code, error.retryable) == (status, api_code, retryable)


def test_the_message_id_is_replaced_as_ses_does() -> None:
    raw = b"From: a@x.org\r\nMessage-ID:\r\n <ours@x.org>\r\nSubject: s\r\n\r\nMessage-ID: <in-body@x>\r\n"
    rewritten = sending.with_message_id(raw, "<ses@email.amazonses.com>")
    assert rewritten == (
        b"From: a@x.org\r\nMessage-ID: <ses@email.amazonses.com>\r\nSubject: s\r\n"
        b"\r\nMessage-ID: <in-body@x>\r\n"
    )
    assert sending.with_message_id(b"From: a@x.org\r\n\r\nbody", "<n@x>").startswith(b"Message-ID: <n@x>\r\n")


def test_labels_are_bounded_and_deduplicated() -> None:
    assert sending.clean_labels(["a", "b", "a"]) == ["a", "b"]
    for bad in ([""], [" "], ["x" * 101], ["tab\there"]):
        with pytest.raises(Exception) as caught:
            sending.clean_labels(bad)
        assert status_of(caught.value) == 422
    with pytest.raises(Exception) as too_many:
        sending.clean_labels([f"l{i}" for i in range(51)])
    assert getattr(too_many.value, "fields", None) == [{"field": "labels", "message": "at most 50 labels"}]


def test_every_recipient_starts_sending() -> None:
    delivery = sending.initial_delivery(["B@x.org", "b@x.org", "c@y.org"], "2026-03-01T12:00:00.000Z")
    assert delivery == {
        "status": "sending",
        "recipients": {"b@x.org": {"status": "sending"}, "c@y.org": {"status": "sending"}},
        "counts": {"sending": 2},
        "updated_at": "2026-03-01T12:00:00.000Z",
    }

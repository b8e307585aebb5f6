"""The test message's MIME (services/testmail.build) read back by the parser inbound uses, and what
it refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailroom import errors
from mailroom.mail.parse import parse
from mailroom.services.testmail import DEFAULT_SUBJECT, DEFAULT_TEXT, TestMessage, build

MAILBOX: dict[str, Any] = {"address": "hooks@example.com", "domain": "example.com"}
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_defaults_make_an_ordinary_message_to_the_mailbox() -> None:
    built = build(MAILBOX, TestMessage(), at=AT)
    parsed = parse(built.raw)
    assert parsed.from_address == built.sender == "test@mailroom.invalid"
    assert parsed.subject == built.subject == DEFAULT_SUBJECT
    assert parsed.text is not None and parsed.text.strip() == DEFAULT_TEXT
    assert parsed.message_id is not None and parsed.message_id.endswith("@example.com>")
    headers = {name.lower(): value for name, value in parsed.headers}
    assert headers["to"] == "hooks@example.com" and headers["date"] == "Sun, 01 Mar 2026 12:00:00 +0000"
    # Nothing marks it as a test or as automatic: routes and rules see what they would see.
    assert not {"auto-submitted", "precedence", "x-mailroom-test"} & set(headers)


def test_chosen_fields_and_extra_headers_reach_the_message() -> None:
    request = TestMessage(
        sender="Bób Example <bob@partner.example>",
        subject="Facture n° 42",
        text="Montant : 12 €",
        html="<p>Montant : <b>12 €</b></p>",
        headers={"List-Id": "<news.partner.example>", "X-Priority": "1"},
    )
    parsed = parse(build(MAILBOX, request, at=AT).raw)
    assert (parsed.from_address, parsed.subject) == ("bob@partner.example", "Facture n° 42")
    assert parsed.text is not None and "12 €" in parsed.text
    assert parsed.html is not None and "<b>12 €</b>" in parsed.html
    headers = dict(parsed.headers)
    assert headers["List-Id"] == "<news.partner.example>" and headers["X-Priority"] == "1"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (TestMessage(sender="a@example.net\r\nBcc: b@example.org"), "from"),
        (TestMessage(sender="two@example.net, three@example.net"), "from"),
        (TestMessage(subject="Hi\rthere"), "subject"),
        (TestMessage(text="a lone surrogate \ud800"), "text"),
        (TestMessage(headers={"Return-Path": "<x@example.net>"}), "headers.Return-Path"),
        (TestMessage(headers={"X-SES-Spam-Verdict": "PASS"}), "headers.X-SES-Spam-Verdict"),
        (TestMessage(headers={"X-Ok": "a\nX-Injected: b"}), "headers.X-Ok"),
        (TestMessage(headers={"X:Colon": "x"}), "headers.X:Colon"),
        (TestMessage(headers={f"X-{n}": "v" for n in range(21)}), "headers"),
    ],
)
def test_what_a_message_cannot_carry_is_refused_naming_the_field(request_: TestMessage, field: str) -> None:
    with pytest.raises(errors.Invalid) as refused:
        build(MAILBOX, request_, at=AT)
    assert [f["field"] for f in refused.value.fields or []] == [field]

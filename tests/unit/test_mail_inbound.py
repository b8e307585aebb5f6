"""Inbound mail's pure parts: SES's trace and verdicts, the forwarded form of a message, recipient
normalization, and alias/forwarding expansion (loops, depth, one copy per mailbox)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest

from local import ses
from mailroom.mail import forwarding
from mailroom.mail.receipt import Verdicts, trace_of
from mailroom.services import inbound_message, inbound_routing
from mailroom.store.table import Item

WHEN = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
PASSING = {
    "spam": "PASS",
    "virus": "PASS",
    "spf": "PASS",
    "dkim": "PASS",
    "dmarc": "PASS",
    "dmarcPolicy": "none",
}
MESSAGE = (
    b"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=s1;\r\n b=abc\r\n"
    b"From: =?utf-8?q?Ann_Caf=C3=A9?= <ann@example.net>\r\n"
    b"To: team@example.com\r\n"
    b"Subject: Numbers\r\n"
    b"Message-ID: <orig@example.net>\r\n"
    b"References: <older@example.net>\r\n"
    b"X-SES-Spam-Verdict: PASS\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"line one\r\n\r\nline three\r\n"
)


def stored(raw: bytes, verdicts: dict[str, str] | None = None, recipients: list[str] | None = None) -> bytes:
    return ses.with_ses_headers(
        raw,
        source="bounce@example.net",
        recipients=recipients or ["team@example.com"],
        message_id="abc123def",
        helo="mx.example.net",
        peer="192.0.2.1",
        verdicts={**PASSING, **(verdicts or {})},
        region="us-east-1",
        received_at=WHEN,
    )


# --- SES's trace ------------------------------------------------------------------------------------


def test_trace_of_a_stored_message() -> None:
    trace = trace_of(stored(MESSAGE, {"spam": "FAIL", "dkim": "FAIL"}, ["a@example.com", "B@Example.com"]))
    assert trace.ses_message_id == "abc123def"
    assert trace.recipients == ["a@example.com", "b@example.com"]
    assert trace.received_at == WHEN.replace(microsecond=0)
    assert trace.envelope_from == "bounce@example.net"
    assert (trace.verdicts.spam, trace.verdicts.virus, trace.verdicts.dkim, trace.verdicts.spf) == (
        "FAIL",
        "PASS",
        "FAIL",
        "PASS",
    )


def test_a_forged_verdict_below_ses_headers_is_not_believed() -> None:
    assert b"X-SES-Spam-Verdict: PASS" in MESSAGE  # the sender's own (forged) verdict
    trace = trace_of(stored(MESSAGE, {"spam": "FAIL"}))
    assert trace.verdicts.spam == "FAIL"  # SES's header is the first one, the sender's comes after
    assert trace_of(MESSAGE).ses_message_id is None  # no SES trace at all
    assert trace_of(MESSAGE).recipients == []


def test_verdicts_from_a_receipt_event() -> None:
    receipt = {
        "spamVerdict": {"status": "pass"},
        "virusVerdict": {"status": "FAIL"},
        "spfVerdict": {"status": "PASS"},
    }
    verdicts = Verdicts.from_receipt(receipt)
    assert (verdicts.spam, verdicts.virus, verdicts.dkim, verdicts.dmarc) == ("PASS", "FAIL", "GRAY", "GRAY")
    assert verdicts.is_virus and not verdicts.is_spam
    assert verdicts.as_item() == {
        "spam": "PASS",
        "virus": "FAIL",
        "spf": "PASS",
        "dkim": "GRAY",
        "dmarc": "GRAY",
    }


@pytest.mark.parametrize(
    ("dmarc", "policy", "spam"),
    [
        ("FAIL", "reject", True),
        ("FAIL", "quarantine", True),
        ("FAIL", "none", False),
        ("PASS", "reject", False),
    ],
)
def test_a_dmarc_failure_is_spam_when_the_domain_asks_for_it(dmarc: str, policy: str, spam: bool) -> None:
    verdicts = Verdicts.from_receipt({"dmarcVerdict": {"status": dmarc}, "dmarcPolicy": policy.upper()})
    assert verdicts.is_spam is spam


# --- forwarding ------------------------------------------------------------------------------------


def test_a_forward_comes_from_the_forwarding_address_and_keeps_the_body_byte_for_byte() -> None:
    original = stored(MESSAGE)
    out = forwarding.forwarded(
        original,
        forwarder="team@example.com",
        original_from="Ann Café <ann@example.net>",
        original_reply_to=[],
        original_message_id="<orig@example.net>",
        references=["<older@example.net>"],
    )
    parsed = message_from_bytes(out, policy=default)
    assert parsed["From"].addresses[0].addr_spec == "team@example.com"
    assert parsed["From"].addresses[0].display_name == "Ann Café via Mailroom"
    assert str(parsed["Reply-To"]) == "Ann Café <ann@example.net>"
    assert str(parsed["References"]).split() == ["<older@example.net>", "<orig@example.net>"]
    assert parsed["Delivered-To"] == "team@example.com"
    for gone in (
        "DKIM-Signature",
        "Message-ID",
        "Return-Path",
        "X-SES-Spam-Verdict",
        "Authentication-Results",
    ):
        assert parsed[gone] is None, gone
    assert parsed["Subject"] == "Numbers" and parsed["To"] == "team@example.com"
    assert out.split(b"\r\n\r\n", 1)[1] == MESSAGE.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 998 for line in out.split(b"\r\n"))


def test_forward_keeps_line_endings_and_an_existing_reply_to() -> None:
    lf = b"From: a@example.net\nReply-To: list@example.org\nSubject: x\n\nbody\n"
    out = forwarding.forwarded(
        lf,
        forwarder="fwd@example.com",
        original_from="a@example.net",
        original_reply_to=["list@example.org"],
        original_message_id=None,
        references=[],
    )
    assert b"\r\n" not in out and out.endswith(b"\n\nbody\n")
    parsed = message_from_bytes(out, policy=default)
    assert str(parsed["Reply-To"]) == "list@example.org" and parsed["References"] is None


def test_forwarding_loops_are_detected() -> None:
    once = forwarding.forwarded(
        MESSAGE,
        forwarder="a@example.com",
        original_from="ann@example.net",
        original_reply_to=[],
        original_message_id=None,
        references=[],
    )
    assert forwarding.is_looping(once, "A@example.com")
    assert not forwarding.is_looping(once, "b@example.com")
    many = b"".join(f"Delivered-To: hop{i}@x.org\r\n".encode() for i in range(forwarding.MAX_FORWARD_HOPS))
    assert forwarding.is_looping(many + MESSAGE, "new@example.com")


# --- recipients and expansion ------------------------------------------------------------------------


def test_recipients_are_normalized() -> None:
    assert inbound_routing.normalize_recipient(" <Ann.B@Example.COM> ") == "ann.b@example.com"
    assert inbound_routing.normalize_recipient("user@Bücher.de") == "user@xn--bcher-kva.de"
    assert inbound_routing.normalize_recipient("no-at-sign") is None


class FakeDirectory(inbound_routing.Directory):
    """Items in memory: one organization ``org`` hosting ``example.com`` (domain ``dom``)."""

    def __init__(self, owners: dict[str, Item], items: dict[str, Item], catch_all: str | None = None) -> None:
        self.owners, self.items = owners, items
        self.domain_item: Item = {"id": "dom", "active": True, "catch_all": catch_all}
        self.reads = 0

    def claim(self, domain_name: str) -> Item | None:
        return {"org_id": "org", "domain_id": "dom"} if domain_name == "example.com" else None

    def route(self, address: str) -> Item | None:
        return self.claim(address.rpartition("@")[2])

    def domain(self, org_id: str, domain_id: str) -> Item | None:
        return self.domain_item

    def owner(self, org_id: str, address: str) -> Item | None:
        return self.owners.get(address)

    def mailbox(self, org_id: str, mailbox_id: str) -> Item | None:
        return self.items.get(mailbox_id)

    def alias(self, org_id: str, alias_id: str) -> Item | None:
        return self.items.get(alias_id)


def mailbox(ident: str, **extra: Any) -> Item:
    return {"id": ident, "address": f"{ident}@example.com", "active": True, **extra}


def alias(ident: str, goto: list[str]) -> Item:
    return {"id": ident, "address": f"{ident}@example.com", "active": True, "goto": goto}


def expand(
    directory: FakeDirectory, recipients: list[str], *, no_forward: str | None = None
) -> inbound_routing.OrgPlan:
    plans, _ = inbound_routing.route(directory, tuple(recipients))
    plan = plans["org"]
    context = inbound_routing.Context(senders=[], raw=MESSAGE, no_forward_reason=no_forward)
    expansion = inbound_routing.Expansion(directory, plan, context)
    expansion.blocked = lambda mailbox: bool(mailbox.get("blocks"))  # type: ignore[method-assign]
    return expansion.run()


def directory_of(*items: Item, catch_all: str | None = None) -> FakeDirectory:
    owners = {
        str(i["address"]): {"kind": "alias" if "goto" in i else "mailbox", "id": i["id"]} for i in items
    }
    return FakeDirectory(owners, {str(i["id"]): i for i in items}, catch_all=catch_all)


def test_alias_loops_end_and_each_mailbox_gets_one_copy() -> None:
    directory = directory_of(
        mailbox("m1"),
        mailbox("m2"),
        alias("a", ["b@example.com", "m1@example.com"]),
        alias("b", ["a@example.com", "m2@example.com", "m1@example.com", "out@elsewhere.org"]),
    )
    plan = expand(directory, ["a@example.com", "b@example.com", "m1@example.com", "M1@example.com"])
    assert sorted(plan.copies) == ["m1", "m2"]
    assert plan.copies["m1"].via == "a@example.com"  # reached through a first: that is what it was sent to
    assert {s: f.targets for s, f in plan.forwards.items()} == {"b@example.com": ["out@elsewhere.org"]}
    assert plan.drops == []


def test_expansion_depth_is_bounded() -> None:
    chain = [
        alias(f"a{i}", [f"a{i + 1}@example.com"]) for i in range(inbound_routing.MAX_EXPANSION_DEPTH + 2)
    ]
    directory = directory_of(*chain, mailbox(f"a{len(chain)}"))
    plan = expand(directory, ["a0@example.com"])
    assert plan.copies == {} and plan.drops == [("dom", "expansion_too_deep")]


def test_forwarding_rules_paused_blocked_inactive_and_missing_targets() -> None:
    directory = directory_of(
        mailbox("fwd", forwarding={"targets": ["x@elsewhere.org", "keep@example.com"], "keep_copy": False}),
        mailbox("keep"),
        mailbox("paused", paused=True, forwarding={"targets": ["y@elsewhere.org"], "keep_copy": False}),
        mailbox("blocking", blocks=True, forwarding={"targets": ["z@elsewhere.org"], "keep_copy": True}),
        mailbox("off", active=False),
        alias("gone", ["deleted@example.com"]),
    )
    plan = expand(
        directory,
        [
            "fwd@example.com",
            "paused@example.com",
            "blocking@example.com",
            "off@example.com",
            "gone@example.com",
            "nobody@example.com",
        ],
    )
    assert sorted(plan.copies) == ["keep", "paused"]
    assert {s: f.targets for s, f in plan.forwards.items()} == {"fwd@example.com": ["x@elsewhere.org"]}
    assert plan.held == {"mailbox_paused": 1}
    assert sorted(reason for _, reason in plan.drops) == [
        "blocked_sender",
        "mailbox_inactive",
        "missing_target",
        "unknown_recipient",
    ]


def test_spam_is_not_forwarded_the_mailbox_keeps_it_and_an_alias_drops_it() -> None:
    directory = directory_of(
        mailbox("fwd", forwarding={"targets": ["x@elsewhere.org"], "keep_copy": False}),
        alias("list", ["y@elsewhere.org"]),
        catch_all="z@elsewhere.org",
    )
    plan = expand(directory, ["fwd@example.com", "list@example.com", "anyone@example.com"], no_forward="spam")
    assert sorted(plan.copies) == ["fwd"] and plan.forwards == {}
    assert plan.held == {"spam": 1}
    assert sorted(reason for _, reason in plan.drops) == ["not_forwarded_spam", "not_forwarded_spam"]


def test_catch_all_and_pending_invites() -> None:
    directory = directory_of(mailbox("ca"), catch_all="ca@example.com")
    directory.owners["invited@example.com"] = {"kind": "invite", "id": "inv"}
    plan = expand(directory, ["who@example.com", "invited@example.com", "x@unhosted.org"])
    assert sorted(plan.copies) == ["ca"] and plan.copies["ca"].via == "who@example.com"
    assert plan.drops == [("dom", "pending_invite")]
    _, unrouted = inbound_routing.route(directory, ("x@unhosted.org", "bad"))
    assert unrouted == {"unknown_domain": 1, "invalid_recipient": 1}


def test_stored_text_is_valid_unicode_and_bounded() -> None:
    raw = (
        b"From: J\xc3\xb6rg \xf6 <j@example.org>\r\nTo: a@example.com\r\nSubject: caf\xe9 "
        + b"x" * 5000
        + b"\r\nX-Raw: \xff\r\n\r\nbody\r\n"
    )
    parsed = inbound_message.parse_safely(raw, len(raw))
    assert not isinstance(parsed, inbound_message.Unparseable)
    texts = [parsed.subject, parsed.from_ or "", *[v for pair in parsed.headers for v in pair]]
    assert all(not any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in texts)
    assert len(parsed.subject) == inbound_message.MAX_HEADER_TEXT
    assert dict(parsed.headers)["From"].startswith("Jörg \ufffd")  # valid UTF-8 kept, the rest replaced
    assert inbound_message.clean_text("ok") == "ok" and inbound_message.clean_text("\ud800") == "\ufffd"

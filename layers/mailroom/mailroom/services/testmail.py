"""Test mail (``POST /api/v1/mailbox/{id}/testmail``): a message built here and received by the
real inbound pipeline, for a user to check a mailbox's routes and rules (docs/automation-mailbox.md).

The message goes exactly where SES's receipt rule would leave one (``<inbound prefix><id>`` in the
mail bucket) and through ``services.inbound.receive`` exactly as an SES event would take it: domain
routing, blocked senders, forwarding, the mailbox's rules and routes, storing, the log. Only two
things differ, both out of band, so no sender can make mail look like a test:

* ``ReceivedMail.test`` is set by this module (it is not a header): every mailbox the message
  reaches writes a processing-log entry for it with ``test: true``, even one without rules or routes;
* the envelope sender is empty (``MAIL FROM:<>``, as a bounce's): whatever the ``from`` header
  says, no auto-reply and no reply action answers a test (auto-reply restraint refuses mail without
  a return path), so test mail cannot be used to send mail to an address of the caller's choosing.

A log entry exists for every test message: when the pipeline stored nothing for the mailbox and
logged nothing (the mailbox is inactive, the sender blocked, forwarding keeps no copy...), one is
written here with the reason as its outcome. Its id, ``log_<ulid>``, names the message the copy
became (``msg_<ulid>``) either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

from mailroom import clock, errors, ids, lazy_imports
from mailroom.mail.addresses import parse_mailbox
from mailroom.mail.header_text import ComposeError, check_body_text, check_header_text
from mailroom.mail.receipt import Verdicts
from mailroom.services.mail_delivery import source_message_id
from mailroom.settings import get_settings
from mailroom.store import mail_objects
from mailroom.store import rules as rule_store
from mailroom.store.table import Item, Table

if TYPE_CHECKING:
    from mailroom.services import inbound

# The inbound pipeline (rules, automation, calendar invitations: icalendar, ...) is imported by
# ``send_test``, its one user here, not with this module: MailTrigger's mailbox function imports this
# module for its test-mail route and its models' limits, and every other route of that function would
# pay for the pipeline at init. Declared, so that with SnapStart it is loaded before the snapshot.
lazy_imports.declare("mailroom.services.inbound")

DEFAULT_FROM = "Mailroom test <test@mailroom.invalid>"  # .invalid never resolves (RFC 2606)
DEFAULT_SUBJECT = "Test message"
DEFAULT_TEXT = (
    "This is a test message, received through Mailroom's inbound pipeline to check this mailbox's "
    "routes and rules. Its processing-log entry says what they did."
)
MAX_HEADERS = 20
MAX_BODY_CHARS = 100_000
HEADER_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext
# Headers the pipeline or this module sets, or that claim a path or an authentication result the
# message did not have: a test may not bring its own.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "received",
        "return-path",
        "delivered-to",
        "dkim-signature",
        "authentication-results",
        "received-spf",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
    }
)


@dataclass(frozen=True, slots=True)
class TestMessage:
    """What the caller chose; None: the default."""

    __test__ = False  # not a pytest test class, whatever its name

    sender: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _invalid(error: ComposeError) -> errors.Invalid:
    return errors.validation(error.message, field=error.field)


def _checked_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    if len(headers) > MAX_HEADERS:
        raise errors.validation(f"at most {MAX_HEADERS} headers", field="headers")
    checked = []
    for name, value in headers.items():
        if not HEADER_NAME_RE.match(name):
            raise errors.validation(f"'{name[:80]}' is not a header name", field=f"headers.{name[:80]}")
        if name.lower() in RESERVED_HEADERS or name.lower().startswith("x-ses-"):
            raise errors.validation(
                f"{name} is set by the pipeline; a test message cannot bring its own",
                field=f"headers.{name}",
                code="reserved_header",
            )
        if len(value) > 998:
            raise errors.validation("at most 998 characters", field=f"headers.{name}")
        try:
            check_header_text(f"headers.{name}", value)
        except ComposeError as exc:
            raise _invalid(exc) from exc
        checked.append((name, value))
    return checked


@dataclass(frozen=True, slots=True)
class Built:
    raw: bytes
    sender: str  # the From address
    subject: str


def build(mailbox: Item, request: TestMessage, *, at: datetime) -> Built:
    """The test message's MIME (422 naming the field for anything a header cannot carry)."""
    try:
        sender = parse_mailbox("from", request.sender or DEFAULT_FROM)
        subject = DEFAULT_SUBJECT if request.subject is None else request.subject
        check_header_text("subject", subject)
        text = DEFAULT_TEXT if request.text is None else request.text
        check_body_text("text", text)
        if request.html is not None:
            check_body_text("html", request.html)
    except ComposeError as exc:
        raise _invalid(exc) from exc
    extra = _checked_headers(request.headers)
    message = EmailMessage(policy=SMTP)
    message["From"] = str(sender)
    message["To"] = str(mailbox["address"])
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid("test", domain=str(mailbox["domain"]))
    for name, value in extra:
        message[name] = value
    message.set_content(text)
    if request.html is not None:
        message.add_alternative(request.html, subtype="html")
    return Built(message.as_bytes(), sender.address, subject)


def _not_delivered(report: inbound.Report, built: Built) -> dict[str, Any]:
    """The entry for a copy the pipeline did not store: why, from the pipeline's report."""
    if report.dropped:
        reason = report.dropped.most_common(1)[0][0]
    elif report.forwarded or report.held:
        reason = "forwarded_without_copy"
    else:
        reason = "not_delivered"
    return {
        "message_id": None,
        "ses_message_id": report.ses_message_id,
        "from": built.sender,
        "subject": built.subject[:200],
        "rules_matched": [],
        "actions": [],
        "outcome": reason,
        "folder": None,
        "auto_reply": None,
        "evaluation_us": 0,
        "created_at": clock.now_iso(),
        "test": True,
    }


def send_test(table: Table, mailbox: Item, request: TestMessage) -> Item:
    """Receive a test message in ``mailbox`` through the inbound pipeline: its log entry (the
    processing-log item of the mailbox's copy)."""
    from mailroom.services import inbound

    received_at = clock.utcnow()
    built = build(mailbox, request, at=received_at)
    ses_message_id = ids.new_id("tst")
    object_key = f"{get_settings().inbound_prefix}{ses_message_id}"
    mail_objects.put_bytes(object_key, built.raw, content_type="message/rfc822")
    report = inbound.receive(
        table,
        inbound.ReceivedMail(
            ses_message_id=ses_message_id,
            object_key=object_key,
            recipients=(str(mailbox["address"]),),
            envelope_from="",
            received_at=received_at,
            verdicts=Verdicts(),
            raw=built.raw,
            test=True,
        ),
    )
    org_id, mailbox_id = str(mailbox["org_id"]), str(mailbox["id"])
    ulid = source_message_id(received_at, ses_message_id, mailbox_id).partition("_")[2]
    log = rule_store.get_log(table, org_id, mailbox_id, ulid)
    if log is None:
        entry = _not_delivered(report, built)
        log = rule_store.log_item(org_id, mailbox_id, ulid, entry, received_at)
        rule_store.put_log(table, log)
    return log

"""Inbound mail: a message SES received, delivered to every mailbox it is for.

SES's receipt rule stores the raw message at ``inbound/<ses message id>`` and invokes the inbound
function; this module does the rest for one message:

1. **Route** each envelope recipient (lower case) through its domain's claim to an organization
   (on the shared platform domain, through the address's own claim: services/platform_domain.py).
   A domain nobody hosts, or an inactive one, drops the recipient.
2. **Skip what was done.** An organization whose receipt item exists for this SES message id
   (``ORG#<org>#INBOUND / <id>``) handled it already: a redelivered SES event, or the S3
   ``ObjectCreated`` event of the same object, stops here for that organization.
3. **Read and parse** the raw message once (standard library, explicit limits). A message over a
   limit or unparseable is quarantined, never lost.
4. **Expand** each recipient: the address directory gives a mailbox or an alias; an alias expands
   to its targets (mailboxes and aliases of the organization, external addresses); a mailbox's
   forwarding adds its targets and may keep no copy; an unknown address goes to the domain's
   catch-all, if set. Expansion is bounded (``MAX_EXPANSION_DEPTH``) and visits each mailbox and
   alias once, so loops end and a mailbox reached twice gets one copy. Dropped, and counted: unknown
   recipients (never bounced: no backscatter), blocked senders, inactive mailboxes and aliases,
   targets that no longer exist.
   (services/inbound_routing.py; the message itself is parsed in services/inbound_message.py.)
5. **Rules** (services/inbound_rules.py): each mailbox's rules decide the copy's folder, labels,
   flags, extra forwards, a discard (Trash) or a reject (not kept, never bounced), and whether its
   auto-reply answers; the processing log entry is stored with the message.
6. **Act**: ``mail_delivery.deliver`` per mailbox (Inbox, or Spam on a spam verdict; deterministic
   message id from the SES message id, so a retry stores nothing twice); quarantine per mailbox on a
   virus verdict or a parse failure; forward to external targets through SES (not for spam, virus
   or unparseable mail). A message with a problem that reaches no mailbox of the organization is
   quarantined once under the organization.
7. **Record** the organization's receipt item and its domains' daily counters in one transaction,
   so the counters move exactly once per message.

Message problems never raise; AWS failures do, so Lambda's asynchronous retry runs the message
again (everything above is idempotent; only an external forward whose send succeeded but whose
record did not can be sent twice).
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mailroom import clock
from mailroom.mail import forwarding
from mailroom.mail.limits import DEFAULT_LIMITS
from mailroom.mail.parse import ParsedMessage, Unparseable
from mailroom.mail.receipt import Verdicts
from mailroom.observability import traced
from mailroom.services import calendar_invites, inbound_rules, ticket_inbound
from mailroom.services.inbound_message import parse_safely
from mailroom.services.inbound_routing import (
    Context,
    Copy,
    Directory,
    Expansion,
    Forward,
    OrgPlan,
    route,
    route_hints,
)
from mailroom.services.mail_delivery import Incoming, MetadataTooLarge, deliver, quarantine_raw
from mailroom.store import domain_metrics, keys, mail_objects, ses_outbound, suppressions, usage
from mailroom.store.errors import ObjectMissing, SendRefused
from mailroom.store.mail import Stored
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected, put, put_new, run

SENT, SENT_BEFORE = "sent", "sent_before"
RECEIPT_TTL_DAYS = 30
SES_SEND_BATCH = 50  # recipients per SendEmail


class InboundObjectMissing(RuntimeError):
    """The receipt rule's S3 object is not there: raised so the event is retried, then kept in the
    function's failure destination for an operator."""


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message as the receipt rule left it."""

    ses_message_id: str
    object_key: str  # inbound/<ses message id>
    recipients: tuple[str, ...]  # envelope recipients SES accepted
    envelope_from: str
    received_at: datetime
    verdicts: Verdicts
    bucket: str | None = None  # None: the mail bucket
    raw: bytes | None = None  # already read (the S3 event path reads it to learn the rest)
    # A test message (services/testmail.py): set by the code that built it, never read from the
    # message, so no sender can mark mail as a test. Every mailbox it reaches logs it.
    test: bool = False


@dataclass(slots=True)
class Report:
    """What happened to one message (logged; counted as metrics by the caller)."""

    ses_message_id: str
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    forwarded: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)  # forwards not sent; the mailbox kept a copy
    organizations: int = 0
    already_done: int = 0
    problem: str | None = None  # the quarantine reason of a message problem (virus, too_deep, ...)
    ticket_replies: int = 0  # operator answers stored in support tickets

    def as_dict(self) -> dict[str, Any]:
        return {
            "ses_message_id": self.ses_message_id,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "forwarded": self.forwarded,
            "dropped": dict(self.dropped),
            "held": dict(self.held),
            "organizations": self.organizations,
            "already_done": self.already_done,
            "problem": self.problem,
            "ticket_replies": self.ticket_replies,
        }


def read_raw(mail: ReceivedMail) -> tuple[bytes | None, int]:
    """The stored message (None when over the size limit: it is never read into memory)."""
    if mail.raw is not None:
        return mail.raw, len(mail.raw)
    try:
        return mail_objects.get_bytes_within(
            mail.object_key, DEFAULT_LIMITS.max_message_bytes, bucket_name=mail.bucket
        )
    except ObjectMissing as exc:
        raise InboundObjectMissing(
            f"s3://{mail.bucket or mail_objects.bucket()}/{mail.object_key} does not exist"
        ) from exc


def receipt_exists(table: Table, org_id: str, ses_message_id: str) -> bool:
    return table.get(keys.inbound_pk(org_id), keys.inbound_receipt_sk(ses_message_id)) is not None


def _receipt_key(org_id: str, mail: ReceivedMail) -> tuple[str, str]:
    return keys.inbound_pk(org_id), keys.inbound_receipt_sk(mail.ses_message_id)


@traced
def receive(table: Table, mail: ReceivedMail) -> Report:
    """Deliver one received message (see the module docstring)."""
    report = Report(mail.ses_message_id)
    # Replies to support tickets (services/ticket_inbound.py) are the tickets', not a mailbox's.
    for_tickets = ticket_inbound.receive(table, mail)
    if for_tickets.remaining != mail.recipients:
        mail = replace(mail, recipients=for_tickets.remaining, raw=mail.raw or for_tickets.raw)
        report.ticket_replies = len(for_tickets.stored)
    directory = Directory(table, route_hints(table))
    # The recipients' domains and address entries with each organization's receipt (and, for
    # recipients this process delivered to before, their mailboxes and rules): one BatchGetItem.
    directory.prefetch_routes(
        mail.recipients, also=lambda org_id: [_receipt_key(org_id, mail)], senders=[mail.envelope_from]
    )
    plans, unrouted = route(directory, mail.recipients)
    report.dropped.update(unrouted)
    report.organizations = len(plans)
    pending = {}
    for org_id, plan in plans.items():
        if directory.item(_receipt_key(org_id, mail)) is not None:
            report.already_done += 1
        else:
            pending[org_id] = plan
    if not pending:
        return report

    raw, size = read_raw(mail)
    parsed = parse_safely(raw, size)
    problem: Unparseable | None = parsed if isinstance(parsed, Unparseable) else None
    if problem is None and mail.verdicts.is_virus:
        problem = Unparseable("virus", "SES virus verdict FAIL")
    report.problem = problem.reason if problem else None
    message = parsed if isinstance(parsed, ParsedMessage) else None
    no_forward = problem.reason if problem else ("spam" if mail.verdicts.is_spam else None)
    context = Context(
        senders=[mail.envelope_from, message.from_address if message else None],
        raw=raw,
        no_forward_reason=no_forward,
    )
    for plan in pending.values():
        # The mailboxes the recipients name, with their blocked senders, rules and auto-reply.
        directory.prefetch_mailboxes(plan, context.senders)
        expansion = Expansion(directory, plan, context)
        expansion.run()
        decisions: dict[str, inbound_rules.Decision] = {}
        if message is not None and problem is None:
            decisions = inbound_rules.run(
                expansion, message, envelope_from=mail.envelope_from, spam=mail.verdicts.is_spam
            )
            if mail.test:
                inbound_rules.mark_test(plan.copies, decisions)
        _act(
            table,
            mail,
            plan,
            raw=raw,
            size=size,
            message=message,
            problem=problem,
            report=report,
            decisions=decisions,
        )
    return report


def _envelope(mail: ReceivedMail, message: ParsedMessage | None) -> dict[str, Any]:
    return {
        "ses_message_id": mail.ses_message_id,
        "envelope_from": mail.envelope_from or None,
        "from": message.from_address if message else None,
        "subject": message.subject[:200] if message else None,
    }


def _act(
    table: Table,
    mail: ReceivedMail,
    plan: OrgPlan,
    *,
    raw: bytes | None,
    size: int,
    message: ParsedMessage | None,
    problem: Unparseable | None,
    report: Report,
    decisions: dict[str, inbound_rules.Decision],
) -> None:
    org_id = plan.org_id
    dropped: list[tuple[str, str]] = list(plan.drops)
    report.held.update(plan.held)
    quarantine_args: dict[str, Any] = {
        "org_id": org_id,
        "raw": None,
        "received_at": mail.received_at,
        "source_id": mail.ses_message_id,
        "envelope": _envelope(mail, message),
        "source_key": mail.object_key,
        "source_bucket": mail.bucket,
        "size": size,
    }
    delivered = 0
    for copy in plan.copies.values():
        mailbox_id = str(copy.mailbox["id"])
        if problem is not None or message is None or raw is None:
            reason = problem.reason if problem else "unparseable"
            detail = problem.detail if problem else ""
            quarantine_raw(table, mailbox_id=mailbox_id, reason=reason, detail=detail, **quarantine_args)
            report.quarantined += 1
            delivered += 1
            continue
        decision = decisions.get(mailbox_id)
        if decision is not None and decision.rejected:
            # Not kept and never bounced (no backscatter): logged, and counted as dropped.
            inbound_rules.record_reject(
                table,
                org_id,
                mailbox_id,
                decision,
                ses_message_id=mail.ses_message_id,
                received_at=mail.received_at,
                message=message,
            )
            dropped.append((copy.domain_id, "rejected_by_rule"))
            continue
        try:
            incoming = _incoming(mail, org_id, copy, raw, message)
            if decision is None:
                outcome = deliver(table, incoming)
            else:
                outcome = inbound_rules.deliver_decided(
                    table, incoming, decision, envelope_from=mail.envelope_from
                )
        except MetadataTooLarge as exc:
            quarantine_raw(
                table, mailbox_id=mailbox_id, reason="metadata_too_large", detail=str(exc), **quarantine_args
            )
            report.quarantined += 1
            delivered += 1
            continue
        if outcome.stored is Stored.STORED:
            report.stored += 1
            # Calendar invitations, cancellations and replies in it (never fails the delivery).
            calendar_invites.on_stored(table, copy.mailbox, outcome.message, message)
        elif outcome.stored is Stored.DUPLICATE:
            report.duplicates += 1
        elif outcome.stored is Stored.OVER_QUOTA:
            report.quarantined += 1  # deliver kept it in quarantine
        else:
            dropped.append((copy.domain_id, "mailbox_deleted"))
            continue
        delivered += 1

    for forward in plan.forwards.values():
        # Forwards are only planned for sound mail (no_forward_reason), so both are there.
        assert raw is not None
        assert message is not None
        # The organization's suppression list (hard bounces, complaints) holds for forwards too:
        # SES would count every such send against the account's reputation.
        suppressed = suppressions.find(table, org_id, forward.targets)
        if suppressed:
            dropped += [(forward.domain_id, "forward_suppressed")] * len(suppressed)
            forward.targets = [t for t in forward.targets if t.lower() not in suppressed]
            if not forward.targets:
                continue
        result = _send_forward(table, mail, org_id, forward, raw, message)
        if result in (SENT, SENT_BEFORE):
            report.forwarded += len(forward.targets) if result == SENT else 0
            delivered += 1
        else:
            dropped += [(forward.domain_id, result)] * len(forward.targets)

    if problem is not None and delivered == 0:
        # Never lost: a problem message that reached no mailbox of this organization is kept once
        # under the organization (kept 30 days by the bucket's lifecycle).
        quarantine_raw(
            table, mailbox_id=None, reason=problem.reason, detail=problem.detail, **quarantine_args
        )
        report.quarantined += 1

    for _domain_id, reason in dropped:
        report.dropped[reason] += 1
    _record(table, mail, plan, dropped, report)


def _incoming(mail: ReceivedMail, org_id: str, copy: Copy, raw: bytes, message: ParsedMessage) -> Incoming:
    return Incoming(
        org_id=org_id,
        mailbox=copy.mailbox,
        raw=raw,
        parsed=message,
        folder_key="spam" if mail.verdicts.is_spam else "inbox",
        direction="inbound",
        received_at=mail.received_at,
        source_id=mail.ses_message_id,
        # Server-side copy of what SES stored: the bytes do not travel through Lambda twice.
        raw_source_key=mail.object_key,
        raw_source_bucket=mail.bucket,
        verdicts=mail.verdicts.as_item(),
        extra={
            "ses_message_id": mail.ses_message_id,
            "envelope_from": mail.envelope_from or None,
            "delivered_to": copy.via,
        },
        event_type="message.received",
        meter={"messages_received": 1},
    )


def _send_forward(
    table: Table, mail: ReceivedMail, org_id: str, forward: Forward, raw: bytes, message: ParsedMessage
) -> str:
    """Send one forward, once (a record of it is kept): SENT, SENT_BEFORE, or why it was dropped."""
    from mailroom.observability import logger

    sk = keys.inbound_forward_sk(mail.ses_message_id, forward.source)
    if table.get(keys.inbound_pk(org_id), sk) is not None:
        return SENT_BEFORE  # by an earlier attempt at this message
    data = forwarding.forwarded(
        raw,
        forwarder=forward.source,
        original_from=message.from_ or mail.envelope_from,
        original_reply_to=message.reply_to,
        original_message_id=message.message_id,
        references=message.references,
    )
    sent: list[str] = []
    try:
        for start in range(0, len(forward.targets), SES_SEND_BATCH):
            sent.append(
                ses_outbound.send_raw(
                    data,
                    envelope_from=forward.source,
                    recipients=forward.targets[start : start + SES_SEND_BATCH],
                    tags={**forward.tags, "kind": "forward", "source": mail.ses_message_id},
                )
            )
    except SendRefused as exc:
        # Refused for what the message is: a retry would be refused again. Anything else (throttling,
        # paused sending, an outage) raises, so the event is retried and nothing is dropped.
        logger().warning(
            "forward refused by SES",
            extra={"ses_message_id": mail.ses_message_id, "source": forward.source, "error": exc.code},
        )
        return "forward_rejected"
    record = {
        "PK": keys.inbound_pk(org_id),
        "SK": sk,
        "type": "inbound_forward",
        "targets": forward.targets,
        "ses_sent_ids": sent,
        "sent_at": clock.now_iso(),
        "ttl": _expiry(),
    }
    # The record and the month's usage in one request (docs/billing.md).
    month = clock.utcnow().strftime("%Y-%m")
    metered = usage.counter_op(org_id, month, messages_forwarded=1, sent_recipients=len(forward.targets))
    run(table, [put("forward", record), metered])
    return SENT


def _expiry() -> int:
    return calendar.timegm((clock.utcnow() + timedelta(days=RECEIPT_TTL_DAYS)).timetuple())


def _record(
    table: Table, mail: ReceivedMail, plan: OrgPlan, dropped: list[tuple[str, str]], report: Report
) -> None:
    """The organization's receipt and its domains' counters, in one transaction."""
    day = mail.received_at.astimezone(UTC).date().isoformat()
    counters: dict[str, Counter[str]] = {}
    for domain in plan.recipients.values():
        domain_counters = counters.setdefault(str(domain["id"]), Counter())
        domain_counters["inbound_total"] = 1
        if mail.verdicts.is_spam:
            domain_counters["inbound_spam"] = 1
        if mail.verdicts.is_virus:
            domain_counters["inbound_virus"] = 1
    for domain_id, _reason in dropped:
        counters.setdefault(domain_id, Counter())["inbound_dropped"] += 1
    receipt: Item = {
        "PK": keys.inbound_pk(plan.org_id),
        "SK": keys.inbound_receipt_sk(mail.ses_message_id),
        "type": "inbound_receipt",
        "ses_message_id": mail.ses_message_id,
        "received_at": clock.isoformat(mail.received_at),
        "processed_at": clock.now_iso(),
        "recipients": sorted(plan.recipients),
        "copies": sorted(plan.copies),
        "dropped": dict(Counter(reason for _, reason in dropped)),
        "problem": report.problem,
        "ttl": _expiry(),
    }
    operations = [put_new("receipt", receipt)]
    operations += [
        domain_metrics.increment_op(plan.org_id, domain_id, day, **dict(values))
        for domain_id, values in counters.items()
    ]
    try:
        run(table, operations)
    except Rejected as rejected:
        if rejected.roles != ["receipt"]:
            raise
        # A concurrent delivery of the same event recorded it first (and counted it): nothing to add.

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
5. **Act**: ``mail_delivery.deliver`` per mailbox (Inbox, or Spam on a spam verdict; deterministic
   message id from the SES message id, so a retry stores nothing twice); quarantine per mailbox on a
   virus verdict or a parse failure; forward to external targets through SES (not for spam, virus
   or unparseable mail). A message with a problem that reaches no mailbox of the organization is
   quarantined once under the organization.
6. **Record** the organization's receipt item and its domains' daily counters in one transaction,
   so the counters move exactly once per message.

Message problems never raise; AWS failures do, so Lambda's asynchronous retry runs the message
again (everything above is idempotent; only an external forward whose send succeeded but whose
record did not can be sent twice).
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mailroom import clock
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.mail import forwarding
from mailroom.mail.limits import DEFAULT_LIMITS
from mailroom.mail.parse import Attachment, ParsedMessage, Unparseable, parse
from mailroom.mail.receipt import Verdicts
from mailroom.observability import traced
from mailroom.services import calendar_invites
from mailroom.services.mail_delivery import Incoming, MetadataTooLarge, deliver, quarantine_raw
from mailroom.store import (
    addresses,
    aliases,
    blocked_senders,
    domain_metrics,
    domains,
    keys,
    mail_objects,
    mailboxes,
    platform_domain,
    ses_outbound,
    suppressions,
)
from mailroom.store.errors import ObjectMissing, SendRefused
from mailroom.store.mail import Stored
from mailroom.store.table import Item, Table
from mailroom.store.txn import Rejected, put_new, run

SENT, SENT_BEFORE = "sent", "sent_before"
MAX_EXPANSION_DEPTH = 5  # alias → alias → mailbox forwarding → ...: deeper is a loop or a mistake
MAX_RECIPIENTS = 100  # SES accepts at most 50 per message
RECEIPT_TTL_DAYS = 30
SES_SEND_BATCH = 50  # recipients per SendEmail
# Bounds on what one message puts in its DynamoDB item (a header can be up to the header limit).
MAX_HEADER_TEXT = 998
MAX_LISTED_ADDRESSES = 100
MAX_ATTACHMENT_LABEL = 255
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


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


@dataclass(frozen=True, slots=True)
class Copy:
    mailbox: Item
    via: str  # the envelope recipient it was addressed to (the first, if several lead here)
    domain_id: str  # the recipient domain the copy is counted for


@dataclass(slots=True)
class Forward:
    source: str  # hosted address the forward is sent from (envelope sender and From)
    tags: dict[str, str]
    domain_id: str
    targets: list[str] = field(default_factory=list)


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
        }


# --- reads, cached for the message ------------------------------------------------------------------


class Directory:
    """Every item resolution reads, read once per message (an alias fan-out touches the same
    domain and mailboxes many times)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._claims: dict[str, Item | None] = {}
        self._routes: dict[str, Item | None] = {}
        self._items: dict[tuple[str, str], Item | None] = {}

    def claim(self, domain_name: str) -> Item | None:
        if domain_name not in self._claims:
            self._claims[domain_name] = domains.claim_of(self.table, domain_name)
        return self._claims[domain_name]

    def route(self, address: str) -> Item | None:
        """The claim (``org_id``, ``domain_id``) that routes ``address``."""
        if address not in self._routes:
            self._routes[address] = platform_domain.routing_claim(
                self.table, self.claim(domain_part(address)), address
            )
        return self._routes[address]

    def _get(self, kind: str, org_id: str, ident: str) -> Item | None:
        cache_key = (kind, f"{org_id}/{ident}")
        if cache_key not in self._items:
            reader = {
                "domain": domains.get,
                "address": addresses.resolve,
                "mailbox": mailboxes.get,
                "alias": aliases.get,
            }[kind]
            self._items[cache_key] = reader(self.table, org_id, ident)
        return self._items[cache_key]

    def domain(self, org_id: str, domain_id: str) -> Item | None:
        return self._get("domain", org_id, domain_id)

    def owner(self, org_id: str, address: str) -> Item | None:
        return self._get("address", org_id, address)

    def mailbox(self, org_id: str, mailbox_id: str) -> Item | None:
        return self._get("mailbox", org_id, mailbox_id)

    def alias(self, org_id: str, alias_id: str) -> Item | None:
        return self._get("alias", org_id, alias_id)

    def hosted_domain(self, org_id: str, address: str) -> Item | None:
        """The domain item when ``address`` is on one of ``org_id``'s domains."""
        claim = self.route(address)
        if claim is None or claim["org_id"] != org_id:
            return None
        return self.domain(org_id, claim["domain_id"])


def domain_part(address: str) -> str:
    host = address.rpartition("@")[2]
    try:
        return normalize_domain(host)
    except InvalidDomainName:
        return host.lower()


def normalize_recipient(raw: str) -> str | None:
    address = raw.strip().strip("<>").strip().lower()
    local, at, host = address.rpartition("@")
    if not at or not local or not host:
        return None
    return f"{local}@{domain_part(address)}"


# --- routing and expansion ----------------------------------------------------------------------------


@dataclass(slots=True)
class OrgPlan:
    """One organization's share of a message: its recipients, then what they expand to."""

    org_id: str
    recipients: dict[str, Item] = field(default_factory=dict)  # address → its domain item
    copies: dict[str, Copy] = field(default_factory=dict)  # mailbox id → copy
    forwards: dict[str, Forward] = field(default_factory=dict)  # source address → forward
    drops: list[tuple[str, str]] = field(default_factory=list)  # (domain id, reason)
    held: Counter[str] = field(default_factory=Counter)  # forwards not sent, the mailbox kept the copy


@dataclass(frozen=True, slots=True)
class Context:
    """What expansion needs to know about the message itself."""

    senders: list[str | None]  # envelope sender and From address, for blocked-sender checks
    raw: bytes | None
    no_forward_reason: str | None  # spam, virus, unparseable: forwarding is skipped


def route(directory: Directory, recipients: tuple[str, ...]) -> tuple[dict[str, OrgPlan], Counter[str]]:
    """Recipients grouped by the organization hosting their domain; the rest counted by reason."""
    plans: dict[str, OrgPlan] = {}
    unrouted: Counter[str] = Counter()
    seen: set[str] = set()
    for raw_address in recipients[:MAX_RECIPIENTS]:
        address = normalize_recipient(raw_address)
        if address is None or address in seen:
            if address is None:
                unrouted["invalid_recipient"] += 1
            continue
        seen.add(address)
        claim = directory.route(address)
        domain = directory.domain(claim["org_id"], claim["domain_id"]) if claim else None
        if claim is None or domain is None:
            # On the shared platform domain an address nobody holds has no organization to count it.
            shared = (directory.claim(domain_part(address)) or {}).get("shared")
            unrouted["unknown_recipient" if shared else "unknown_domain"] += 1
            continue
        plan = plans.setdefault(claim["org_id"], OrgPlan(claim["org_id"]))
        plan.recipients[address] = domain
    return plans, unrouted


class Expansion:
    """Expands one organization's recipients into copies, forwards and drops (see module doc)."""

    def __init__(self, directory: Directory, plan: OrgPlan, context: Context) -> None:
        self.directory = directory
        self.plan = plan
        self.context = context
        self._visited: set[str] = set()
        self._forward_targets: set[str] = set()
        self._blocked: dict[str, bool] = {}

    def run(self) -> OrgPlan:
        for address, domain in self.plan.recipients.items():
            self.recipient(address, domain)
        return self.plan

    def drop(self, domain_id: str, reason: str) -> None:
        self.plan.drops.append((domain_id, reason))

    def recipient(self, address: str, domain: Item) -> None:
        domain_id = str(domain["id"])
        if not domain.get("active", True):
            self.drop(domain_id, "domain_inactive")
            return
        owner = self.directory.owner(self.plan.org_id, address)
        kind = owner.get("kind") if owner else None
        if owner is not None and kind in ("mailbox", "alias"):
            self.owner(owner, via=address, depth=0, domain_id=domain_id)
        elif kind == "invite":
            # Reserved for a mailbox that does not exist yet: its future owner's mail must not
            # land in a catch-all someone else reads.
            self.drop(domain_id, "pending_invite")
        elif domain.get("catch_all"):
            not_sent = self.target(
                str(domain["catch_all"]),
                via=address,
                depth=1,
                domain_id=domain_id,
                source=address,
                source_tags={"catch_all": domain_id},
            )
            if not_sent:
                self.drop(domain_id, f"not_forwarded_{not_sent}")
        else:
            self.drop(domain_id, "unknown_recipient")

    def owner(self, owner: Item, *, via: str, depth: int, domain_id: str) -> None:
        org_id, ident = self.plan.org_id, str(owner["id"])
        if owner.get("kind") == "mailbox":
            mailbox = self.directory.mailbox(org_id, ident)
            if mailbox is None:
                self.drop(domain_id, "missing_target")
            else:
                self.mailbox(mailbox, via=via, depth=depth, domain_id=domain_id)
        else:
            alias = self.directory.alias(org_id, ident)
            if alias is None:
                self.drop(domain_id, "missing_target")
            else:
                self.alias(alias, via=via, depth=depth, domain_id=domain_id)

    def target(
        self,
        address: str,
        *,
        via: str,
        depth: int,
        domain_id: str,
        source: str,
        source_tags: dict[str, str],
    ) -> str | None:
        """Deliver to an alias, forwarding or catch-all target. Returns why an external target is
        not forwarded (spam, virus, loop...), for the caller to decide what becomes of the copy;
        None when it was handled (delivered, forwarded, or dropped and counted here)."""
        if depth > MAX_EXPANSION_DEPTH:
            self.drop(domain_id, "expansion_too_deep")
            return None
        hosted = self.directory.hosted_domain(self.plan.org_id, address)
        if hosted is None:
            return self.forward(address, source=source, source_tags=source_tags, domain_id=domain_id)
        if not hosted.get("active", True):
            self.drop(domain_id, "domain_inactive")
            return None
        owner = self.directory.owner(self.plan.org_id, address)
        if owner is None or owner.get("kind") not in ("mailbox", "alias"):
            self.drop(domain_id, "missing_target")
            return None
        self.owner(owner, via=via, depth=depth, domain_id=domain_id)
        return None

    def forward(self, target: str, *, source: str, source_tags: dict[str, str], domain_id: str) -> str | None:
        if target in self._forward_targets:
            return None  # already forwarded from another path: one copy per target
        reason = self.context.no_forward_reason
        raw = self.context.raw
        if reason is None and raw is not None and forwarding.is_looping(raw, source):
            reason = "loop"
        if reason is not None:
            return reason
        self._forward_targets.add(target)
        forward = self.plan.forwards.setdefault(
            source,
            Forward(source=source, tags={"org_id": self.plan.org_id, **source_tags}, domain_id=domain_id),
        )
        forward.targets.append(target)
        return None

    def blocked(self, mailbox: Item) -> bool:
        mailbox_id = str(mailbox["id"])
        if mailbox_id not in self._blocked:
            self._blocked[mailbox_id] = blocked_senders.any_blocked(
                self.directory.table, self.plan.org_id, mailbox_id, self.context.senders
            )
        return self._blocked[mailbox_id]

    def mailbox(self, mailbox: Item, *, via: str, depth: int, domain_id: str) -> None:
        mailbox_id = str(mailbox["id"])
        if f"mbx:{mailbox_id}" in self._visited:
            return  # reached twice (an alias and directly, two aliases...): one copy
        self._visited.add(f"mbx:{mailbox_id}")
        if not mailbox.get("active", True):
            self.drop(domain_id, "mailbox_inactive")
            return
        if self.blocked(mailbox):
            self.drop(domain_id, "blocked_sender")
            return
        settings = mailbox.get("forwarding") or {}
        targets = [str(t) for t in settings.get("targets") or []]
        keep_copy = bool(settings.get("keep_copy", True)) or not targets
        for target in targets:
            hosted = self.directory.hosted_domain(self.plan.org_id, target) is not None
            if not hosted and mailbox.get("paused"):
                # Pausing stops what a mailbox sends, and an external forward is sent from its
                # address: held back, and the mailbox keeps the copy so nothing is lost.
                self.plan.held["mailbox_paused"] += 1
                keep_copy = True
                continue
            not_sent = self.target(
                target,
                via=via,
                depth=depth + 1,
                domain_id=domain_id,
                source=str(mailbox["address"]),
                source_tags={"mailbox_id": mailbox_id},
            )
            if not_sent:
                # Spam, virus, unparseable or a loop: not forwarded, so the mailbox keeps it (Spam
                # folder or quarantine) even without keep_copy.
                self.plan.held[not_sent] += 1
                keep_copy = True
        if keep_copy:
            self.plan.copies.setdefault(mailbox_id, Copy(mailbox=mailbox, via=via, domain_id=domain_id))

    def alias(self, alias: Item, *, via: str, depth: int, domain_id: str) -> None:
        alias_id = str(alias["id"])
        if f"als:{alias_id}" in self._visited:
            return
        self._visited.add(f"als:{alias_id}")
        if not alias.get("active", True):
            self.drop(domain_id, "alias_inactive")
            return
        for target in alias.get("goto") or []:
            not_sent = self.target(
                str(target),
                via=via,
                depth=depth + 1,
                domain_id=domain_id,
                source=str(alias["address"]),
                source_tags={"alias_id": alias_id},
            )
            if not_sent:
                self.drop(domain_id, f"not_forwarded_{not_sent}")


# --- the message -------------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """Valid Unicode for DynamoDB: header bytes the parser could not decode stay in its strings as
    lone surrogates (``surrogateescape``), which no store accepts. They become the UTF-8 they were,
    or U+FFFD."""
    if not _SURROGATE_RE.search(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return _SURROGATE_RE.sub("\ufffd", value)


def _bounded(parsed: ParsedMessage) -> ParsedMessage:
    """The parsed message as it may be stored: valid Unicode everywhere, and every unbounded string
    and list cut to a size that keeps its DynamoDB item small (a header may legally be hundreds of
    kilobytes)."""

    def text(value: str | None, limit: int | None = None) -> str | None:
        return clean_text(value)[:limit] if value else value

    def addresses(values: list[str]) -> list[str]:
        return [clean_text(a)[:MAX_HEADER_TEXT] for a in values[:MAX_LISTED_ADDRESSES]]

    attachments: list[Attachment] = [
        replace(
            a,
            filename=text(a.filename, MAX_ATTACHMENT_LABEL),
            content_id=text(a.content_id, MAX_ATTACHMENT_LABEL),
            content_type=clean_text(a.content_type)[:MAX_ATTACHMENT_LABEL],
        )
        for a in parsed.attachments
    ]
    return replace(
        parsed,
        from_=text(parsed.from_, MAX_HEADER_TEXT),
        subject=clean_text(parsed.subject)[:MAX_HEADER_TEXT],
        to=addresses(parsed.to),
        cc=addresses(parsed.cc),
        reply_to=addresses(parsed.reply_to),
        message_id=text(parsed.message_id, MAX_HEADER_TEXT),
        in_reply_to=text(parsed.in_reply_to, MAX_HEADER_TEXT),
        references=[clean_text(r)[:MAX_HEADER_TEXT] for r in parsed.references],
        text=text(parsed.text),
        html=text(parsed.html),
        headers=[(clean_text(name), clean_text(value)) for name, value in parsed.headers],
        preview=clean_text(parsed.preview),
        attachments=attachments,
    )


def parse_safely(raw: bytes | None, size: int) -> ParsedMessage | Unparseable:
    """Parsed, or why not. ``parse`` is pure, so anything it raises is about the message."""
    if raw is None:
        return Unparseable("too_large", f"{size} bytes exceeds {DEFAULT_LIMITS.max_message_bytes}")
    try:
        return _bounded(parse(raw))
    except Unparseable as problem:
        return problem
    except Exception as exc:  # a standard-library corner the parser did not foresee: keep the bytes
        return Unparseable("unparseable", f"{type(exc).__name__}: {exc}")


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


@traced
def receive(table: Table, mail: ReceivedMail) -> Report:
    """Deliver one received message (see the module docstring)."""
    report = Report(mail.ses_message_id)
    directory = Directory(table)
    plans, unrouted = route(directory, mail.recipients)
    report.dropped.update(unrouted)
    report.organizations = len(plans)
    pending = {}
    for org_id, plan in plans.items():
        if receipt_exists(table, org_id, mail.ses_message_id):
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
        Expansion(directory, plan, context).run()
        _act(table, mail, plan, raw=raw, size=size, message=message, problem=problem, report=report)
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
        try:
            outcome = deliver(table, _incoming(mail, org_id, copy, raw, message))
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
    table.put(
        {
            "PK": keys.inbound_pk(org_id),
            "SK": sk,
            "type": "inbound_forward",
            "targets": forward.targets,
            "ses_sent_ids": sent,
            "sent_at": clock.now_iso(),
            "ttl": _expiry(),
        }
    )
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

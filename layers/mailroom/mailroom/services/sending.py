"""Sending mail as a mailbox: the use case behind ``POST /api/v1/messages/send`` (and, later, the
v0 send/reply/forward endpoints, which build a ``SendRequest`` the same way).

A send, in order (each step can refuse it before anything leaves):

1. the mailbox may send (403 ``mailbox_inactive`` / ``mailbox_paused``);
2. ``from`` is the mailbox's address or an *identity*: an active alias of the organization whose
   targets include this mailbox (422 ``invalid_from`` otherwise);
3. attachments: base64 content, or a reference ``{message_id, index}`` to an attachment of a
   message of this mailbox (how a forward carries the original's attachments), read from S3;
4. the MIME is built by ``mail.compose`` (422 with the field: CR/LF/NUL, reserved headers, more
   than 50 recipients, size);
5. the sender domain is active (403 ``domain_inactive``) and no recipient is on the organization's
   suppression list (422 ``recipient_suppressed`` naming each one): one BatchGetItem that also reads
   the domain's SMTP-relay claim (store/send_checks.py; a message token's send has read them
   with its mailbox, services/send_ahead.py, where the keys were known);
6. the Sent copy fits the mailbox's quota (422 ``mailbox_over_quota``);
7. SES v2 sends the raw message with the stack's configuration set (the TLS-requiring one for a
   mailbox with ``tls_enforce_out``; a sender domain with ``active: false`` refuses the send) and the tags
   ``org_id``/``mailbox_id``/``message_id`` (delivery events carry them back to the Sent copy);
   or, when the sender's domain has an SMTP relay, the relay does (``services/smtp_relays.py``:
   the bytes as composed, Mailroom's Message-ID kept);
8. the Sent copy is stored through ``mail_delivery.deliver`` (folder ``sent``, seen, the
   ``message.sent`` event in the same transaction) with the Message-ID SES gave the message, so a
   reply to it threads here; the domain's ``outbound_total`` counter and the replied-to message's
   ``answered`` flag move in the same transaction (the replied-to message is read once, before
   storing, for its thread and its flag).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mailroom import clock, ids
from mailroom.errors import Invalid, MailroomError, Unavailable, UpstreamFailed
from mailroom.mail import compose as mime
from mailroom.mail import threading
from mailroom.mail.addresses import Address, stored_name
from mailroom.mail.compose import Composed, ComposeError, Draft, OutgoingAttachment, with_message_id
from mailroom.mail.header_text import bracketed_message_id, describe, refused_in_header, shown
from mailroom.mail.parse import ParsedMessage, Unparseable, parse
from mailroom.observability import logger, traced
from mailroom.services import contact_groups, mailbox_policy, smtp_relays
from mailroom.store import (
    addresses,
    domain_metrics,
    mail_objects,
    send_checks,
    ses_outbound,
    usage,
)
from mailroom.store import aliases as alias_store
from mailroom.store import mail as mail_store
from mailroom.store.errors import ConditionFailed, SendingPaused, SendRefused, StoreError, Throttled
from mailroom.store.mail import Stored
from mailroom.store.retry import retried
from mailroom.store.send_checks import ReadAhead
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op, Rejected, Update

if TYPE_CHECKING:
    from mailroom.services.mail_delivery import Incoming, Outcome

MAX_LABELS = mail_store.MAX_LABELS
MAX_LABEL_CHARS = 100
# Base64 grows data by 4/3: anything longer cannot fit the encoded message limit once decoded.
MAX_BASE64_CHARS = mime.MAX_MESSAGE_BYTES * 4 // 3 + 4
SENDING = "sending"
ANSWERED = "answered"  # the role of the replied-to message's flag in the storing transaction


@dataclass(frozen=True, slots=True)
class AttachmentInput:
    """Either ``content`` (decoded bytes) or a reference to a stored message's attachment."""

    filename: str | None = None
    content_type: str | None = None
    content: str | None = None  # base64, as the API takes it; decoded (and checked) when sending
    message_id: str | None = None
    index: int | None = None
    content_id: str | None = None
    inline: bool | None = None


@dataclass(slots=True)
class SendRequest:
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: list[AttachmentInput] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    sender: str | None = None  # ``from``: the mailbox's address (default) or one of its identities
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    # The Sent copy joins a thread only through In-Reply-To/References, never by subject (v0's
    # forward "creates a new thread"; v1 keeps the mail core's subject fallback).
    new_thread: bool = False


@dataclass(frozen=True, slots=True)
class Sender:
    identity: Address  # the From: display name and the address
    domain_id: str | None

    @property
    def address(self) -> str:
        return self.identity.address


@dataclass(frozen=True, slots=True)
class Sent:
    message: Item  # the Sent copy, as stored
    ses_message_id: str
    stored: Stored

    @property
    def message_id(self) -> str:
        return str(self.message["id"])

    @property
    def thread_id(self) -> str:
        return str(self.message["thread_id"])


# ----------------------------------------------------------------------------- errors


def compose_error(error: ComposeError) -> MailroomError:
    """A composing failure as the API reports it: 422 with its stable code and the failing field."""
    return Invalid(
        error.code,
        error.message,
        fields=[{"field": error.field, "message": error.message}],
        hint="Fix the listed field and send again.",
    )


def invalid(field_name: str, message: str, code: str = "validation_error") -> MailroomError:
    return Invalid(code, message, fields=[{"field": field_name, "message": message}])


def ses_error(failure: StoreError) -> MailroomError:
    """An SES failure as the API reports it (nothing was sent in any of these cases)."""
    if isinstance(failure, SendRefused):
        return Invalid(
            "send_rejected",
            f"SES refused the message: {failure.message}",
            hint="Check that the sending domain is verified in SES and the message is acceptable.",
        )
    if isinstance(failure, Throttled):
        return Unavailable(
            "send_throttled", "SES is throttling sends; nothing was sent.", retryable=True, retry_after=1
        )
    if isinstance(failure, SendingPaused):
        return Unavailable(
            "sending_paused",
            f"Sending is paused for this AWS account or configuration set: {failure.message}",
            retryable=True,
        )
    return UpstreamFailed("ses_unavailable", "SES could not be reached; nothing was sent.", retryable=True)


# ----------------------------------------------------------------------------- identities


def _display_name(mailbox: Item) -> str:
    # Names are checked when stored; one stored before that may hold what no header can carry.
    return stored_name(str(mailbox.get("name") or ""))


def resolve_sender(table: Table, mailbox: Item, requested: str | None) -> Sender:
    """The ``From`` of a send: the mailbox's address by default, or an identity of the mailbox.

    An identity is an active alias of the organization that delivers to this mailbox (its
    ``goto`` names the mailbox's address). The display name is the one given with ``from``, or
    else the mailbox's name.
    """
    own = str(mailbox["address"]).lower()
    if requested is None or not requested.strip():
        return Sender(Address(_display_name(mailbox), own), mailbox.get("domain_id"))
    try:
        given = mime.parse_mailbox("from", requested)
    except ComposeError as exc:
        raise compose_error(exc) from exc
    address = given.address.lower()
    display = given.name or _display_name(mailbox)
    if address == own:
        return Sender(Address(display, own), mailbox.get("domain_id"))
    entry = addresses.resolve(table, mailbox["org_id"], address)
    alias = (
        alias_store.get(table, mailbox["org_id"], entry["id"])
        if entry is not None and entry.get("kind") == "alias"
        else None
    )
    if (
        alias is None
        or not alias.get("active", True)
        or own not in {str(t).lower() for t in alias.get("goto") or []}
    ):
        raise invalid(
            "from",
            f"{address} is not an address this mailbox can send as: use the mailbox's own address "
            "or an active alias that delivers to it",
            code="invalid_from",
        )
    return Sender(Address(display, address), alias.get("domain_id"))


# ----------------------------------------------------------------------------- attachments


def resolve_attachments(
    table: Table, mailbox: Item, inputs: list[AttachmentInput]
) -> list[OutgoingAttachment]:
    """Decode inline content and fetch referenced attachments (of this mailbox's messages only)."""
    encoded = sum(len(a.content or "") for a in inputs)
    if encoded > MAX_BASE64_CHARS:
        raise invalid(
            "attachments",
            f"attachments hold {encoded} characters of base64; the encoded message limit is "
            f"{mime.MAX_MESSAGE_BYTES} bytes",
            code="message_too_large",
        )
    result: list[OutgoingAttachment] = []
    messages: dict[str, Item | None] = {}
    for position, given in enumerate(inputs):
        where = f"attachments.{position}"
        if given.content is not None:
            if given.message_id is not None or given.index is not None:
                raise invalid(where, "give either content or message_id and index, not both")
            if not given.filename:
                raise invalid(f"{where}.filename", "an attachment with content needs a filename")
            try:
                data = base64.b64decode(given.content, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise invalid(f"{where}.content", "content is not valid base64") from exc
            result.append(
                OutgoingAttachment(
                    filename=given.filename,
                    content_type=given.content_type or "",
                    content=data,
                    content_id=given.content_id,
                    inline=bool(given.inline),
                )
            )
            continue
        if given.message_id is None or given.index is None:
            raise invalid(where, "an attachment needs content (base64) or message_id and index")
        if given.message_id not in messages:
            messages[given.message_id] = (
                mail_store.get_message(table, mailbox["org_id"], mailbox["id"], given.message_id)
                if ids.is_id(given.message_id, "msg")
                else None
            )
        source = messages[given.message_id]
        stored = next(
            (a for a in (source or {}).get("attachments") or [] if int(a["index"]) == given.index), None
        )
        if stored is None:
            raise invalid(
                where,
                f"message {shown(given.message_id)} of this mailbox has no attachment {given.index}",
                code="unknown_attachment",
            )
        result.append(
            OutgoingAttachment(
                filename=given.filename or stored.get("filename") or f"attachment-{given.index}",
                content_type=given.content_type or str(stored["content_type"]),
                content=mail_objects.get_bytes(stored["key"]),
                # A received message's Content-ID may be one no header can carry again: then it goes.
                content_id=(
                    given.content_id
                    if given.content_id is not None
                    else mime.usable_content_id(stored.get("content_id"))
                ),
                inline=given.inline if given.inline is not None else stored.get("disposition") == "inline",
            )
        )
    return result


def clean_labels(labels: list[str]) -> list[str]:
    if len(labels) > MAX_LABELS:
        raise invalid("labels", f"at most {MAX_LABELS} labels")
    for position, label in enumerate(labels):
        refused = refused_in_header(label) or ("\t" if "\t" in label else None)
        if not label.strip() or len(label) > MAX_LABEL_CHARS or refused:
            found = f" ({describe(refused)} is one)" if refused else ""
            raise invalid(
                f"labels.{position}",
                f"a label is 1 to {MAX_LABEL_CHARS} characters without control characters, line breaks "
                f"or unpaired surrogates{found}",
            )
    return list(dict.fromkeys(labels))


# ----------------------------------------------------------------------------- checks


def _recipient_fields(composed: Composed) -> dict[str, str]:
    """Each recipient (lower-cased) and the first field naming it."""
    fields: dict[str, str] = {}
    for field_name, values in (("to", composed.to), ("cc", composed.cc), ("bcc", composed.bcc)):
        for value in values:
            fields.setdefault(value.address.lower(), field_name)
    return fields


def refuse_suppressed(composed: Composed, found: dict[str, Item]) -> None:
    """422 ``recipient_suppressed`` for the entries ``found`` among ``composed``'s recipients."""
    if not found:
        return
    fields = _recipient_fields(composed)
    listed = sorted(found)
    raise Invalid(
        "recipient_suppressed",
        f"Not sent: {', '.join(listed)} {'is' if len(listed) == 1 else 'are'} on the organization's "
        "suppression list (an earlier message hard-bounced or was reported as spam).",
        fields=[
            {"field": fields[address], "message": f"{address} is suppressed ({found[address].get('reason')})"}
            for address in listed
        ],
        hint="Remove the address from the list (DELETE /api/v1/suppressions/{address}) only if it is "
        "known to accept mail again.",
    )


def check_quota(mailbox: Item, size: int) -> None:
    quota_mb = mailbox.get("quota")
    if not quota_mb:
        return
    quota = int(quota_mb) * 1024 * 1024
    used = int(mailbox.get("used_bytes", 0))
    if used + size > quota:
        raise Invalid(
            "mailbox_over_quota",
            f"The Sent copy ({size} bytes) does not fit: the mailbox uses {used} of its {quota_mb} MB "
            "quota. Nothing was sent.",
            hint="Delete mail or ask an administrator for a larger quota.",
        )


# ----------------------------------------------------------------------------- the send


def _sent_parsed(parsed: ParsedMessage, rfc_message_id: str, request: SendRequest) -> ParsedMessage:
    parsed.message_id = rfc_message_id
    parsed.headers = [
        ("Message-ID", rfc_message_id) if name.lower() == "message-id" else (name, value)
        for name, value in parsed.headers
    ]
    # The Sent copy keeps the bodies as the sender gave them: read back from the MIME they would
    # carry CRLF line ends and the line break MIME ends every text part with. (A body the parser
    # truncated to its limit stays truncated.)
    if request.text is not None and "text" not in parsed.truncated:
        parsed.text = request.text
    if request.html is not None and "html" not in parsed.truncated:
        parsed.html = request.html
    return parsed


def draft_of(request: SendRequest, sender: Sender, attachments: list[OutgoingAttachment]) -> Draft:
    return Draft(
        sender=sender.identity,
        to=list(request.to),
        cc=list(request.cc),
        bcc=list(request.bcc),
        reply_to=list(request.reply_to),
        subject=request.subject,
        text=request.text,
        html=request.html,
        attachments=attachments,
        headers=dict(request.headers),
        in_reply_to=request.in_reply_to,
        references=list(request.references),
    )


def initial_delivery(recipients: list[str], now_iso: str) -> dict[str, Any]:
    """The Sent copy's ``delivery`` before SES reports anything: every recipient ``sending``."""
    unique = list(dict.fromkeys(r.lower() for r in recipients))
    return {
        "status": SENDING,
        "recipients": {address: {"status": SENDING} for address in unique},
        "counts": {SENDING: len(unique)},
        "updated_at": now_iso,
    }


@traced
def send(
    table: Table,
    mailbox: Item,
    request: SendRequest,
    *,
    now: datetime | None = None,
    sender: Sender | None = None,
    ahead: ReadAhead | None = None,
) -> Sent:
    """Send as ``mailbox`` and store the Sent copy (see the module docstring for the order).
    ``sender``: already resolved and checked (a sending identity, services/identities.py);
    ``ahead``: checks read with the mailbox (services/send_ahead.py), used where their keys match."""
    blocked = mailbox_policy.send_blocked(mailbox)
    if blocked is not None:
        raise blocked
    org_id, mailbox_id = str(mailbox["org_id"]), str(mailbox["id"])
    labels = clean_labels(request.labels)
    # Contact groups named as recipients (group:<id>) become their members' addresses.
    request = contact_groups.expand_recipients(table, mailbox, request)
    sender = sender or resolve_sender(table, mailbox, request.sender)
    require_tls = mailbox_policy.requires_tls_out(mailbox)
    attachments = resolve_attachments(table, mailbox, request.attachments)
    draft = draft_of(request, sender, attachments)
    moment = now or clock.utcnow()
    try:
        composed: Composed = mime.compose(draft, now=moment.timestamp())
    except ComposeError as exc:
        raise compose_error(exc) from exc
    # The sender domain, its SMTP-relay claim and the recipients' suppression entries: one read.
    checks = send_checks.read(
        table,
        org_id,
        domain_id=sender.domain_id,
        ascii_domain=smtp_relays.relay_domain(composed.envelope_from),
        recipients=[address.address for address in (*composed.to, *composed.cc, *composed.bcc)],
        ahead=ahead,
    )
    # mailcow's domain `active: false` and mailbox `tls_enforce_out` (services/mailbox_policy.py).
    mailbox_policy.refuse_inactive(checks.domain)
    refuse_suppressed(composed, checks.suppressed)
    check_quota(mailbox, len(composed.raw))
    try:
        parsed = parse(composed.raw)
    except Unparseable as exc:  # our own MIME beyond the stored-mail limits (e.g. very deep nesting)
        raise invalid("body", f"the message cannot be stored as its Sent copy: {exc.detail}") from exc

    message_id = f"msg_{ids.ulid(int(moment.timestamp() * 1000))}"
    now_iso = clock.isoformat(moment)
    delivery = initial_delivery(composed.recipients, now_iso)
    # The sender domain's own SMTP relay, if it has one (services/smtp_relays.py): the bytes go out
    # as composed, so the Message-ID stays Mailroom's; otherwise SES, which assigns its own.
    relayed = smtp_relays.relayed_send(
        table,
        org_id,
        checks.relay_id,
        raw=composed.raw,
        envelope_from=composed.envelope_from,
        recipients=list(dict.fromkeys(composed.recipients)),
        require_tls=require_tls,
    )
    if relayed is not None:
        ses_message_id, rfc_message_id, raw = relayed.source_id, composed.message_id, composed.raw
        delivery = relayed.delivery(delivery, now_iso)
    else:
        ses_message_id = _send_through_ses(
            composed, org_id=org_id, mailbox_id=mailbox_id, message_id=message_id, require_tls=require_tls
        )
        rfc_message_id = ses_outbound.amazon_message_id(ses_message_id)
        raw = with_message_id(composed.raw, rfc_message_id)

    from mailroom.services.mail_delivery import Incoming

    # A reply: the replied-to message, read once for both its thread and its ``answered`` flag.
    replied, replied_key = None, None
    if request.in_reply_to:
        # As composed: a Message-ID given without its angle brackets is written with them.
        replied_key = threading.message_id_key(
            bracketed_message_id(request.in_reply_to.strip()) or request.in_reply_to
        )
        replied = _replied_to(table, org_id, mailbox_id, replied_key)
    incoming = Incoming(
        org_id=org_id,
        mailbox=mailbox,
        raw=raw,
        parsed=_sent_parsed(parsed, rfc_message_id, request),
        folder_key="sent",
        direction="outbound",
        received_at=moment,
        source_id=ses_message_id,
        seen=True,
        labels=labels,
        extra={
            "bcc": [str(address) for address in composed.bcc],
            "ses_message_id": ses_message_id,
            "sender_domain_id": sender.domain_id,
            "delivery": delivery,
        },
        event_type="message.sent",
        rfc_message_id=rfc_message_id,
        message_id=message_id,
        subject_threading=not request.new_thread,
        meter={"messages_sent": 1, "sent_recipients": len(composed.recipients)},
        # The domain's outbound counter moves with the Sent copy: no request of its own.
        also=[
            *_outbound_counter(org_id, sender.domain_id, len(composed.recipients), moment),
            *_answered(org_id, mailbox_id, replied),
        ],
        known_by_rfc_id={replied_key: replied} if replied_key else {},
    )
    try:
        outcome = _store_sent(table, incoming)
    except Exception:
        # The mail is out: a failed request would be retried by the client and send it again. The
        # store is idempotent for this message id (the bytes go to the same keys, the transaction
        # is a conditional put), so it is tried once more (and through an AWS outage, for a while)
        # before giving up.
        logger().exception("storing the Sent copy failed; trying once more", extra={"message_id": message_id})
        outcome = _store_sent(table, incoming)
    if outcome.stored in (Stored.OVER_QUOTA, Stored.NO_MAILBOX):
        # Sent, but the copy went to quarantine (quota filled meanwhile) or the mailbox vanished.
        logger().warning(
            "sent without a Sent copy",
            extra={"org_id": org_id, "mailbox_id": mailbox_id, "stored": outcome.stored.value},
        )
        # Metered with the copy normally; without one, on its own (rare: one UpdateItem). The mail
        # is out: a metering failure must not fail the request (a client would send it again).
        try:
            usage.add(table, org_id, moment.astimezone(UTC).strftime("%Y-%m"), **incoming.meter)
        except StoreError:
            logger().exception("usage not metered for a send without a Sent copy")
        _count_outbound(table, org_id, sender.domain_id, len(composed.recipients), moment)
        if replied is not None:
            try:
                mark_answered(table, org_id, mailbox_id, replied)
            except StoreError:
                # Sent: a missing flag must not turn the send into an error (and a retry).
                logger().exception("answered flag not set", extra={"message_id": message_id})
    return Sent(message=outcome.message, ses_message_id=ses_message_id, stored=outcome.stored)


def _send_through_ses(
    composed: Composed, *, org_id: str, mailbox_id: str, message_id: str, require_tls: bool = False
) -> str:
    if require_tls and not ses_outbound.tls_required_available():
        raise Unavailable(
            "tls_required_unavailable",
            "The mailbox enforces TLS for outgoing mail (tls_enforce_out) but this deployment has no "
            "TLS-requiring configuration set; nothing was sent.",
            hint="Deploy the stack's TlsRequiredConfigurationSet (MAILROOM_SES_TLS_CONFIGURATION_SET), "
            "or turn tls_enforce_out off.",
        )
    try:
        return ses_outbound.send_raw(
            composed.raw,
            envelope_from=composed.envelope_from,
            recipients=list(dict.fromkeys(composed.recipients)),
            tags={"org_id": org_id, "mailbox_id": mailbox_id, "message_id": message_id},
            require_tls=require_tls,
        )
    except StoreError as exc:
        logger().warning("SES refused a send", extra={"code": exc.code, "ses_message": exc.message[:300]})
        raise ses_error(exc) from exc


def _outbound_counter(org_id: str, domain_id: str | None, recipients: int, at: datetime) -> list[Op]:
    """The domain's ``outbound_total`` per recipient, as an operation of the storing transaction."""
    if not domain_id:
        return []
    return [domain_metrics.increment_op(org_id, domain_id, at.date().isoformat(), outbound_total=recipients)]


def _count_outbound(table: Table, org_id: str, domain_id: str | None, recipients: int, at: datetime) -> None:
    """Per recipient, like bounces and complaints, so the domain's rates are per recipient too (on
    its own only for a send whose Sent copy was not stored: otherwise in the storing transaction)."""
    if not domain_id:
        return
    try:
        domain_metrics.increment(table, org_id, domain_id, at.date().isoformat(), outbound_total=recipients)
    except Exception:
        # The mail is out and stored; a lost counter must not turn the send into an error.
        logger().exception("outbound counter not updated", extra={"org_id": org_id, "domain_id": domain_id})


def _replied_to(table: Table, org_id: str, mailbox_id: str, message_id_hash: str) -> Item | None:
    """The replied-to message of this mailbox, if stored here (a failed lookup only costs the
    reply its threading by reference and the parent's flag: the mail is already out)."""
    try:
        return mail_store.find_by_rfc_id(table, org_id, mailbox_id, message_id_hash)
    except StoreError:
        logger().exception("replied-to message not looked up")
        return None


def _answered(org_id: str, mailbox_id: str, parent: Item | None) -> list[Op]:
    """Set ``answered`` on the replied-to message, in the transaction storing the reply."""
    if parent is None or (parent.get("flags") or {}).get("answered"):
        return []
    update = Update(*mail_store.message_key(org_id, mailbox_id, parent["id"]))
    return [update.set(**{"flags.answered": True}).op(ANSWERED)]


def _store_sent(table: Table, incoming: Incoming) -> Outcome:
    """Store the Sent copy; without the replied-to message's flag if that message was deleted since
    it was read (its operation's condition: the copy is stored all the same)."""
    from mailroom.services.mail_delivery import deliver

    try:
        return retried(lambda: deliver(table, incoming))
    except Rejected as rejected:
        if ANSWERED not in rejected.roles:
            raise
    incoming.also = [op for op in incoming.also if op.role != ANSWERED]
    return retried(lambda: deliver(table, incoming))


def mark_answered(table: Table, org_id: str, mailbox_id: str, parent: Item) -> None:
    """Set ``answered`` on the replied-to message on its own (when the Sent copy was not stored)."""
    try:
        for op in _answered(org_id, mailbox_id, parent):
            table.transact([op.body])
    except ConditionFailed:
        return  # deleted meanwhile

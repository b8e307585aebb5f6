"""SES delivery events → each sent message's delivery status, the suppression list, the event stream.

The stack's configuration set publishes Delivery, Bounce, Complaint, Reject and DeliveryDelay
events to EventBridge's default bus (``detail-type`` "Email Delivered", "Email Bounced", "Email
Complaint Received", "Email Rejected", "Email Delivery Delayed"; ``detail`` is SES's event record).
The same records arrive wrapped in SNS notifications if a deployment publishes to SNS instead; both
shapes are read here.

Routing: every send carries the tags ``org_id``, ``mailbox_id``, ``message_id`` and SES repeats a
send's tags in ``detail.mail.tags`` of every event about it, so the Sent copy is one GetItem away
(no index). Its ``ses_message_id`` must match the event's, or the event is ignored.

Per recipient, one transaction: the message's ``delivery`` (recipient results, overall status,
counts), conditioned on ``delivery_version`` being the one read (concurrent events for other
recipients retry on a fresh read); the event ``message.<status>`` with an id derived from
(message, recipient, status), put only if absent; and the domain's bounce/complaint counter. A
recipient moves only forward (``ALLOWED_FROM``), so an event delivered twice finds its recipient
already in that state and changes and emits nothing. Permanent bounces and complaints then add the
address to the organization's suppression list (a conditional put: idempotent as well).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, ids
from mailroom.observability import logger, traced
from mailroom.store import domain_metrics, events, suppressions
from mailroom.store import mail as mail_store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op, Rejected, Update, put_new, run

DETAIL_TYPES = {
    "Email Delivered": "Delivery",
    "Email Bounced": "Bounce",
    "Email Complaint Received": "Complaint",
    "Email Rejected": "Reject",
    "Email Delivery Delayed": "DeliveryDelay",
}
STATUS_OF = {
    "Delivery": "delivered",
    "Bounce": "bounced",
    "Complaint": "complained",
    "Reject": "rejected",
    "DeliveryDelay": "delayed",
}
# A recipient's state only moves forward: these are the states each result may replace.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "delivered": frozenset({"sending", "delayed"}),
    "bounced": frozenset({"sending", "delayed", "delivered"}),  # a late (asynchronous) bounce
    "complained": frozenset({"sending", "delayed", "delivered", "bounced"}),
    "rejected": frozenset({"sending", "delayed"}),
    "delayed": frozenset({"sending"}),
}
EVENT_TYPES = {
    "delivered": "message.delivered",
    "bounced": "message.bounced",
    "complained": "message.complained",
    "rejected": "message.rejected",
}
PENDING = frozenset({"sending", "delayed"})
MAX_ATTEMPTS = 8
STORE_GRACE = timedelta(minutes=5)
STORE_WAIT_ATTEMPTS = 7  # ~6 s in all
_SUPPRESSION_DETAIL = frozenset(
    {"bounce_type", "bounce_sub_type", "smtp_status", "diagnostic_code", "complaint_feedback_type"}
)


@dataclass(frozen=True, slots=True)
class RecipientResult:
    address: str  # lower case
    status: str  # delivered | bounced | complained | rejected | delayed
    at: str  # the SES event's time, ISO 8601
    detail: dict[str, Any] = field(default_factory=dict)
    suppress: str | None = None  # hard_bounce | complaint: add to the suppression list


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    ses_type: str  # Delivery, Bounce, Complaint, Reject, DeliveryDelay
    ses_message_id: str
    org_id: str | None
    mailbox_id: str | None
    message_id: str | None
    results: list[RecipientResult]
    sent_at: str | None = None  # ``mail.timestamp``: when SES accepted the message


class NotStoredYet(Exception):
    """The event came before the send finished storing its Sent copy: Lambda retries the event."""


@dataclass(slots=True)
class Applied:
    changed: int = 0
    duplicates: int = 0
    suppressed: int = 0
    ignored: str | None = None  # why the whole event was ignored


# ----------------------------------------------------------------------------- parsing (pure)


def records(event: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """SES event records in a Lambda event: EventBridge (``detail``) or SNS (``Records[].Sns``)."""
    if isinstance(event.get("detail"), dict):
        yield dict(event["detail"])
        return
    for record in event.get("Records") or []:
        message = (record.get("Sns") or {}).get("Message")
        if isinstance(message, str):
            try:
                parsed = json.loads(message)
            except ValueError:
                logger().warning("SNS message is not JSON; skipped")
                continue
            if isinstance(parsed, dict):
                yield parsed


def _tag(tags: Mapping[str, Any], name: str) -> str | None:
    value = tags.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def _iso(value: Any, fallback: str) -> str:
    if not isinstance(value, str) or not value:
        return fallback
    try:
        return clock.isoformat(clock.parse_iso(value))
    except ValueError:
        return fallback


def _addresses(entries: Any) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("emailAddress"):
            found.append((str(entry["emailAddress"]).strip().lower(), entry))
        elif isinstance(entry, str):
            found.append((entry.strip().lower(), {}))
    return found


def _bare(address: str) -> str:
    """``Name <a@b>`` → ``a@b`` (SES's ``destination`` may carry display names)."""
    from email.utils import parseaddr

    return (parseaddr(address)[1] or address).strip().lower()


def parse_record(record: Mapping[str, Any]) -> DeliveryEvent | None:
    """One SES event record → what it says per recipient; None for types that change nothing."""
    ses_type = str(record.get("eventType") or record.get("notificationType") or "")
    status = STATUS_OF.get(ses_type)
    mail = record.get("mail") or {}
    tags = mail.get("tags") or {}
    if status is None or not mail.get("messageId"):
        return None
    fallback = _iso(mail.get("timestamp"), clock.now_iso())
    results: list[RecipientResult] = []
    if ses_type == "Delivery":
        body = record.get("delivery") or {}
        at = _iso(body.get("timestamp"), fallback)
        detail = {k: body[k] for k in ("smtpResponse", "reportingMTA", "remoteMtaIp") if body.get(k)}
        results = [
            RecipientResult(a, status, at, _snake(detail)) for a, _ in _addresses(body.get("recipients"))
        ]
    elif ses_type == "Bounce":
        body = record.get("bounce") or {}
        at = _iso(body.get("timestamp"), fallback)
        bounce_type = str(body.get("bounceType") or "Undetermined")
        for address, entry in _addresses(body.get("bouncedRecipients")):
            detail = {
                "bounce_type": bounce_type,
                "bounce_sub_type": body.get("bounceSubType"),
                **_smtp(entry),
            }
            # Only a permanent bounce means the address does not take mail; a transient one is
            # reported after SES gave up retrying, but the address may work again.
            suppress = "hard_bounce" if bounce_type == "Permanent" else None
            results.append(RecipientResult(address, status, at, detail, suppress))
    elif ses_type == "Complaint":
        body = record.get("complaint") or {}
        at = _iso(body.get("timestamp"), fallback)
        detail = _snake(
            {k: body[k] for k in ("complaintFeedbackType", "complaintSubType", "userAgent") if body.get(k)}
        )
        results = [
            RecipientResult(a, status, at, detail, "complaint")
            for a, _ in _addresses(body.get("complainedRecipients"))
        ]
    elif ses_type == "Reject":
        body = record.get("reject") or {}
        detail = _snake({k: body[k] for k in ("reason",) if body.get(k)})
        results = [RecipientResult(_bare(a), status, fallback, detail) for a in mail.get("destination") or []]
    elif ses_type == "DeliveryDelay":
        body = record.get("deliveryDelay") or {}
        at = _iso(body.get("timestamp"), fallback)
        for address, entry in _addresses(body.get("delayedRecipients")):
            detail = _snake(
                {
                    "delayType": body.get("delayType"),
                    "expirationTime": body.get("expirationTime"),
                }
            )
            detail.update(_smtp(entry))
            results.append(RecipientResult(address, status, at, {k: v for k, v in detail.items() if v}))
    return DeliveryEvent(
        ses_type=ses_type,
        ses_message_id=str(mail["messageId"]),
        org_id=_tag(tags, "org_id"),
        mailbox_id=_tag(tags, "mailbox_id"),
        message_id=_tag(tags, "message_id"),
        results=results,
        sent_at=_iso(mail.get("timestamp"), "") or None,
    )


def _smtp(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A recipient's SMTP outcome; ``status`` (e.g. 5.1.1) becomes ``smtp_status``, since ``status``
    is the recipient's delivery state in Mailroom."""
    detail = _snake({k: entry[k] for k in ("action", "diagnosticCode") if entry.get(k)})
    if entry.get("status"):
        detail["smtp_status"] = entry["status"]
    return detail


def _snake(values: Mapping[str, Any]) -> dict[str, Any]:
    """SES's camelCase keys in Mailroom's snake_case (``smtpResponse`` → ``smtp_response``)."""
    converted = {}
    for key, value in values.items():
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        converted[name.replace("m_t_a", "mta")] = value
    return converted


def overall(recipients: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, int]]:
    """The message's delivery status from its recipients' (see docs/sending.md), and the counts."""
    counts = Counter(str(r.get("status", "sending")) for r in recipients.values())
    total = sum(counts.values())
    if not total:
        status = "sending"
    elif counts["complained"]:
        status = "complained"
    elif counts["sending"] + counts["delayed"]:
        status = "delayed" if counts["delayed"] else "sending"
    elif counts["delivered"] == total:
        status = "delivered"
    elif counts["rejected"] == total:
        status = "rejected"
    elif counts["delivered"]:
        status = "partially_delivered"
    else:
        status = "bounced"
    return status, dict(sorted(counts.items()))


def event_ulid(message_id: str, address: str, status: str, at: str) -> str:
    """The id of the event reporting ``status`` for ``address``: the same for every delivery of the
    same SES event, so its conditional put records it once."""
    randomness = int(hashlib.sha256(f"{message_id}:{address}:{status}".encode()).hexdigest()[:20], 16)
    return ids.ulid(int(clock.parse_iso(at).timestamp() * 1000), randomness=randomness)


# ----------------------------------------------------------------------------- applying


@traced
def handle(table: Table, event: Mapping[str, Any]) -> list[Applied]:
    """Apply every SES record of a Lambda event (EventBridge or SNS)."""
    outcomes = []
    for record in records(event):
        parsed = parse_record(record)
        if parsed is None:
            outcomes.append(Applied(ignored=f"event type {record.get('eventType')!r} changes nothing"))
            continue
        outcomes.append(apply(table, parsed))
    return outcomes


def apply(table: Table, event: DeliveryEvent, *, now: datetime | None = None) -> Applied:
    applied = Applied()
    if not (event.org_id and event.mailbox_id and event.message_id):
        applied.ignored = "not sent by Mailroom (no routing tags)"
        logger().info("delivery event without routing tags", extra={"ses_message_id": event.ses_message_id})
        return applied
    message = _sent_copy(
        table, event, (event.org_id, event.mailbox_id, event.message_id), now or clock.utcnow()
    )
    if message is None or message.get("ses_message_id") != event.ses_message_id:
        applied.ignored = "no such sent message (deleted, or the tags do not match)"
        logger().info(
            "delivery event for an unknown message",
            extra={"message_id": event.message_id, "ses_message_id": event.ses_message_id},
        )
        return applied
    now_iso = clock.isoformat(now or clock.utcnow())
    for result in event.results:
        message, changed = _apply_one(table, message, result, now_iso)
        if changed:
            applied.changed += 1
        else:
            applied.duplicates += 1
        # Also for a duplicate: a run that died after the status change but before this step left
        # the suppression undone, and the redelivered event is what completes it.
        if result.suppress and _suppress(table, message, result):
            applied.suppressed += 1
    logger().info(
        "delivery event applied",
        extra={
            "ses_type": event.ses_type,
            "message_id": event.message_id,
            "changed": applied.changed,
            "duplicates": applied.duplicates,
            "suppressed": applied.suppressed,
        },
    )
    return applied


def _sent_copy(table: Table, event: DeliveryEvent, key: tuple[str, str, str], now: datetime) -> Item | None:
    """The Sent copy the event is about. SES can report on a message before the send that made it
    has stored its copy (SES answers the send first; a rejection or a nearby recipient's delivery
    can be reported within milliseconds): for a recent send the copy is awaited a few seconds, then
    the event is handed back to Lambda to retry. Missing long after the send, it was deleted."""
    delay = 0.1
    for _ in range(STORE_WAIT_ATTEMPTS):
        message = mail_store.get_message(table, *key)
        if message is not None:
            return message
        sent_at = clock.parse_iso(event.sent_at) if event.sent_at else now
        if now - sent_at > STORE_GRACE:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise NotStoredYet(
        f"the Sent copy {event.message_id} of SES message {event.ses_message_id} is not stored yet"
    )


def _apply_one(table: Table, message: Item, result: RecipientResult, now_iso: str) -> tuple[Item, bool]:
    """(the message as it is now, whether this result changed it)."""
    from mailroom.services.mail_views import message_summary

    for _ in range(MAX_ATTEMPTS):
        delivery = dict(message.get("delivery") or {})
        recipients = {k: dict(v) for k, v in (delivery.get("recipients") or {}).items()}
        current = str(recipients.get(result.address, {}).get("status", "sending"))
        if current not in ALLOWED_FROM[result.status]:
            return message, False
        recipients[result.address] = {"status": result.status, "at": result.at, **result.detail}
        status, counts = overall(recipients)
        new_delivery = {**delivery, "status": status, "recipients": recipients, "counts": counts}
        new_delivery["updated_at"] = now_iso
        version = message.get("delivery_version")
        update = Update(*mail_store.message_key(message["org_id"], message["mailbox_id"], message["id"]))
        update.set(delivery=new_delivery).add(delivery_version=1).equals("delivery_version", version)
        operations: list[Op] = [update.op("message")]
        changed = {**message, "delivery": new_delivery, "delivery_version": int(version or 0) + 1}
        event_type = EVENT_TYPES.get(result.status)
        if event_type:
            data = {
                **message_summary(changed),
                "recipient": result.address,
                "delivery_event": {"status": result.status, "at": result.at, **result.detail},
            }
            ulid = event_ulid(message["id"], result.address, result.status, result.at)
            operations.append(
                put_new("event", events.new_event(message["org_id"], event_type, data, ulid=ulid))
            )
        counter = {"bounced": "outbound_bounces", "complained": "outbound_complaints"}.get(result.status)
        if counter and message.get("sender_domain_id"):
            operations.append(
                domain_metrics.increment_op(
                    message["org_id"], message["sender_domain_id"], result.at[:10], **{counter: 1}
                )
            )
        try:
            run(table, operations)
        except Rejected as rejected:
            if "event" in rejected.roles and "message" not in rejected.roles:
                return message, False  # recorded before: the same SES event, delivered again
            fresh = mail_store.get_message(table, message["org_id"], message["mailbox_id"], message["id"])
            if fresh is None:
                return message, False  # deleted meanwhile: nothing left to update
            message = fresh  # another recipient's event won the race; decide again on what is there
            continue
        return changed, True
    raise RuntimeError(f"delivery of {message['id']} kept changing; giving up after {MAX_ATTEMPTS} attempts")


def _suppress(table: Table, message: Item, result: RecipientResult) -> bool:
    assert result.suppress is not None
    record = {
        "address": result.address,
        "reason": result.suppress,
        "source": {
            "message_id": message["id"],
            "mailbox_id": message["mailbox_id"],
            "ses_message_id": message.get("ses_message_id"),
            **{k: v for k, v in result.detail.items() if k in _SUPPRESSION_DETAIL},
        },
        "event_at": result.at,
        "created_at": clock.now_iso(),
    }
    return suppressions.add(table, message["org_id"], record)

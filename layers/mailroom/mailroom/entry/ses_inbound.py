"""Entry point of the inbound function: turns each record of its event into a ``ReceivedMail`` and
hands it to ``services.inbound.receive``.

Two event shapes name a received message:

* **SES receipt events** (the receipt rule's Lambda action, after its S3 action stored the message
  at ``<prefix><messageId>``): recipients, envelope sender, time and verdicts come from the event.
* **S3 ``ObjectCreated`` events** for ``<prefix><messageId>`` (for redriving stored messages, or a
  bucket notification instead of the Lambda action): the same facts come from the headers SES
  prepended to the stored message (``mail.receipt``).

Both name the same SES message id, and receipts are recorded per SES message id, so the same
message arriving through both, or twice through either, is delivered once. Message problems never
raise (they are quarantined). A transient AWS failure is tried again within the invocation (a few
times, backing off: Lambda's own retry comes a minute later); one that lasts raises, so Lambda's
asynchronous retry runs the event again, and after the retries it is kept in the function's
failure destination.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from mailroom.entry import snapstart
from mailroom.entry.runtime import lambda_entry
from mailroom.observability import append_keys, logger, metrics

if TYPE_CHECKING:
    from mailroom.services.inbound import ReceivedMail, Report

# SES writes this object when a rule with an S3 action is created, to check it may write there.
SES_SETUP_NOTIFICATION = "AMAZON_SES_SETUP_NOTIFICATION"


def _timestamp(value: str | None) -> datetime:
    from mailroom import clock

    return clock.parse_iso(value) if value else clock.utcnow()


def from_ses_record(record: dict[str, Any]) -> ReceivedMail:
    from aws_lambda_powertools.utilities.data_classes.ses_event import SESEventRecord

    from mailroom.mail.receipt import Verdicts
    from mailroom.services.inbound import ReceivedMail
    from mailroom.settings import get_settings

    ses = SESEventRecord(record).ses
    mail, receipt = ses.mail, ses.receipt
    return ReceivedMail(
        ses_message_id=mail.message_id,
        object_key=f"{get_settings().inbound_prefix}{mail.message_id}",
        recipients=tuple(receipt.recipients),
        envelope_from=mail.source or "",
        received_at=_timestamp(mail.timestamp),
        verdicts=Verdicts.from_receipt(receipt.raw_event),
    )


def from_s3_record(record: dict[str, Any]) -> ReceivedMail | None:
    """The message an S3 event announces, or None when it announces none (another prefix, a
    deletion, SES's setup object)."""
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

    from mailroom.mail.limits import DEFAULT_LIMITS
    from mailroom.mail.receipt import trace_of
    from mailroom.services.inbound import ReceivedMail
    from mailroom.settings import get_settings
    from mailroom.store import mail_objects

    s3 = S3EventRecord(record)
    key = unquote_plus(s3.s3.get_object.key)  # S3 URL-encodes keys in notifications
    prefix = get_settings().inbound_prefix
    message_id = key[len(prefix) :] if key.startswith(prefix) else ""
    if not s3.event_name.startswith("ObjectCreated") or not message_id or "/" in message_id:
        logger().info("S3 event ignored", extra={"key": key, "event_name": s3.event_name})
        return None
    if message_id == SES_SETUP_NOTIFICATION:
        return None
    raw, size = mail_objects.get_bytes_within(
        key, DEFAULT_LIMITS.max_message_bytes, bucket_name=s3.s3.bucket.name
    )
    if raw is None:
        # SES never stores more than its 40 MB limit: this object did not come from a receipt rule.
        logger().error("inbound object over the size limit; not delivered", extra={"key": key, "size": size})
        metrics().add_metric(name="InboundUnroutable", unit="Count", value=1)
        return None
    trace = trace_of(raw)
    recipients = trace.recipients
    if not recipients:
        # No SES trace (an object someone put there): the header recipients are the best guess;
        # those not on a hosted domain are dropped as for any message.
        from email.parser import BytesHeaderParser
        from email.policy import compat32
        from email.utils import getaddresses

        from mailroom.mail.receipt import header_block

        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))
        values = [str(v) for name in ("To", "Cc") for v in headers.get_all(name) or []]
        recipients = [a for _, a in getaddresses(values) if "@" in a]
    return ReceivedMail(
        ses_message_id=message_id,
        object_key=key,
        bucket=s3.s3.bucket.name,
        recipients=tuple(recipients),
        envelope_from=trace.envelope_from,
        received_at=trace.received_at or _timestamp(s3.event_time),
        verdicts=trace.verdicts,
        raw=raw,
    )


def _count(report: Report) -> None:
    for name, value in (
        ("InboundStored", report.stored),
        ("InboundDuplicate", report.duplicates),
        ("InboundQuarantined", report.quarantined),
        ("InboundForwarded", report.forwarded),
        ("InboundDropped", sum(report.dropped.values())),
    ):
        if value:
            metrics().add_metric(name=name, unit="Count", value=value)


# The delivery path, imported on the first event (a cold start without SnapStart only pays for it
# when there is mail), into the snapshot with SnapStart.
snapstart.preload(
    "mailroom.services.inbound",
    "mailroom.mail.receipt",
    "aws_lambda_powertools.utilities.data_classes.ses_event",
    "aws_lambda_powertools.utilities.data_classes.s3_event",
)


@lambda_entry
def inbound(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services.inbound import receive
    from mailroom.store.retry import retried
    from mailroom.store.table import Table

    table = Table()
    handled = []
    for record in event.get("Records") or []:
        source = record.get("eventSource")
        if source == "aws:ses":
            mail = from_ses_record(record)
        elif source == "aws:s3":
            found = from_s3_record(record)
            if found is None:
                continue
            mail = found
        else:
            logger().warning("not an SES or S3 record; ignored", extra={"event_source": source})
            continue
        append_keys(ses_message_id=mail.ses_message_id)
        report = retried(functools.partial(receive, table, mail))
        _count(report)
        logger().info("inbound message", extra=report.as_dict())
        handled.append(report.as_dict())
    # The disposition makes the function usable as a RequestResponse action too (SES reads it).
    return {"disposition": "CONTINUE", "messages": handled}

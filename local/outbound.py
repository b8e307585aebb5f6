"""What SES does with a message it accepted, for the local stack (moto only stores it).

``local.moto_patches.ses_sends`` reports every accepted SES v2 ``SendEmail``; ``LocalOutbound.on_send``
hands it to a thread of its own (never holding up moto's request thread, and so never the
function that sent), which then does what SES and the receiving side would:

1. The ``Message-ID`` header becomes ``<ses message id>@email.amazonses.com`` (``<region>.amazonses
   .com`` outside us-east-1): SES replaces the sender's, and replies reference SES's.
2. Recipients at a domain hosted in this stack (its ``DOMAIN#<name>`` claim item exists in the
   table) are handed to local inbound, the same code path as mail arriving at the SMTP listener
   (``local.smtp.InboundProcessor``: the active receipt rule set's rules, S3, the inbound function).
   A hosted recipient no enabled rule accepts is refused as SES's receiving side would refuse it
   (550), which the sender sees as a permanent bounce.
3. SES's mailbox simulator (``<kind>[+label]@simulator.amazonses.com``) answers as documented:
   ``success`` and ``ooto`` are delivered, ``bounce`` bounces (permanent), ``complaint`` is
   delivered then complained about, ``suppressionlist`` bounces as on the account's suppression list.
4. Every other recipient: the message is written to ``<state dir>/outbox/<ses message id>.eml``
   (one file per message, with ``Return-Path`` and ``X-Mailroom-Outbox-To`` naming the envelope),
   for a person to read. Those recipients count as delivered: the outbox stands for the Internet's
   mail servers accepting the message.
5. The configuration set named by the send publishes its events to EventBridge's default bus (the
   template's ``AWS::SES::ConfigurationSetEventDestination`` with an ``EventBridgeDestination``,
   for the event types it lists), shaped as SES publishes them (``detail.mail.tags`` carries the
   send's tags): Send, then Delivery per group delivered (local inbound, outbox, each simulator
   address), Bounce and Complaint as above. EventBridge rules then invoke their functions
   asynchronously (``local.eventbridge``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from local import ses
from mailroom.mail.compose import with_message_id

if TYPE_CHECKING:
    from local.moto_patches.ses_sends import SentEmail
    from local.ses import ReceiptRule
    from local.smtp import Received
    from local.stack import SesEventDestinationSpec

log = logging.getLogger(__name__)

SIMULATOR_DOMAIN = "simulator.amazonses.com"
DETAIL_TYPES = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Reject": "Email Rejected",
    "DeliveryDelay": "Email Delivery Delayed",
}
# The configuration set's MatchingEventTypes name each SES event type this way.
DESTINATION_TYPES = {
    "Send": "send",
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
    "DeliveryDelay": "deliveryDelay",
}
REPORTING_MTA = "a0-0.smtp-out.local.amazonses.com"


class Inbound(Protocol):
    """What local inbound offers (``local.smtp.InboundProcessor``)."""

    def rules(self) -> list[ReceiptRule]: ...

    def receives_for(self, address: str) -> bool: ...

    def receive(
        self, raw: bytes, *, source: str, recipients: list[str], helo: str = ..., peer: str = ...
    ) -> Received: ...


@dataclass(slots=True)
class Outcome:
    """What happened to one sent message (returned by ``process``; tests read it)."""

    ses_message_id: str
    raw: bytes  # as delivered: with SES's Message-ID
    received: list[str] = field(default_factory=list)  # handed to local inbound
    refused: list[str] = field(default_factory=list)  # hosted, but no receipt rule accepts them
    outbox: list[str] = field(default_factory=list)
    simulated: dict[str, str] = field(default_factory=dict)  # address -> simulator behaviour
    outbox_file: Path | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # published to EventBridge


def amazon_message_id(ses_message_id: str, region: str) -> str:
    """The Message-ID SES gives a message it sends."""
    domain = "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"
    return f"<{ses_message_id}@{domain}>"


def simulator_behaviour(address: str) -> str | None:
    """``bounce`` for ``bounce+x@simulator.amazonses.com``; None for other addresses."""
    local, _, domain = address.lower().rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return None
    kind = local.partition("+")[0]
    return kind if kind in ("success", "bounce", "ooto", "complaint", "suppressionlist") else "success"


def domain_claims(dynamodb: Any, table_name: str) -> Callable[[str], bool]:
    """Whether a domain is hosted in this stack: its routing claim (``DOMAIN#<name>``) exists."""

    def hosted(domain: str) -> bool:
        response = dynamodb.get_item(
            TableName=table_name,
            Key={"PK": {"S": f"DOMAIN#{domain.lower()}"}, "SK": {"S": "#CLAIM"}},
            ProjectionExpression="PK",
        )
        return "Item" in response

    return hosted


class LocalOutbound:
    def __init__(
        self,
        *,
        inbound: Inbound,
        hosted: Callable[[str], bool],
        publish: Callable[[dict[str, Any]], Any],
        destinations: Sequence[SesEventDestinationSpec],
        outbox: Path,
        region: str,
        account_id: str,
        workers: int = 2,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._inbound = inbound
        self._hosted = hosted
        self._publish = publish
        self._destinations = [d for d in destinations if d.enabled and d.kind == "eventbridge"]
        self._outbox = outbox
        self._region = region
        self._account_id = account_id
        self._now = now
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ses-out")
        self._futures: set[concurrent.futures.Future[Outcome | None]] = set()
        self._futures_lock = threading.Lock()

    # ----------------------------------------------------------------------------- entry points

    def on_send(self, sent: SentEmail) -> concurrent.futures.Future[Outcome | None]:
        """The moto send listener: queue the work and return at once."""
        future = self._pool.submit(self._process_logged, sent)
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Outcome | None]) -> None:
        with self._futures_lock:
            self._futures.discard(future)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what was accepted (so the final snapshot holds it), then stop."""
        with self._futures_lock:
            pending = list(self._futures)
        concurrent.futures.wait(pending, timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _process_logged(self, sent: SentEmail) -> Outcome | None:
        try:
            return self.process(sent)
        except Exception:
            log.exception("outbound: processing SES message %s failed", sent.message_id)
            return None

    # ----------------------------------------------------------------------------- the work

    def process(self, sent: SentEmail) -> Outcome | None:
        if sent.raw is None:
            log.warning("outbound: SES message %s has no raw content; not delivered locally", sent.message_id)
            return None
        sent_at = self._now()
        raw = with_message_id(sent.raw, amazon_message_id(sent.message_id, self._region))
        source = parseaddr(sent.from_address or "")[1] or (sent.from_address or "")
        outcome = Outcome(ses_message_id=sent.message_id, raw=raw)
        hosted_cache: dict[str, bool] = {}
        hosted: list[str] = []
        for recipient in dict.fromkeys(parseaddr(r)[1].lower() or r.lower() for r in sent.recipients):
            behaviour = simulator_behaviour(recipient)
            if behaviour is not None:
                outcome.simulated[recipient] = behaviour
                continue
            domain = recipient.rpartition("@")[2]
            if domain not in hosted_cache:
                hosted_cache[domain] = self._is_hosted(domain)
            (hosted if hosted_cache[domain] else outcome.outbox).append(recipient)

        if hosted:
            rules = self._inbound.rules()
            accepted = [r for r in hosted if ses.matching_rules(rules, r) and self._inbound.receives_for(r)]
            outcome.refused = [r for r in hosted if r not in accepted]
            if accepted:
                received = self._inbound.receive(raw, source=source, recipients=accepted, helo=REPORTING_MTA)
                outcome.received = accepted
                log.info(
                    "outbound: SES message %s delivered locally to %s (inbound %s, rules %s)",
                    sent.message_id,
                    ", ".join(accepted),
                    received.message_id,
                    ", ".join(received.rules) or "none",
                )
            for refused in outcome.refused:
                log.warning(
                    "outbound: %s is at a hosted domain but no enabled receipt rule accepts it: bounced",
                    refused,
                )
        if outcome.outbox:
            outcome.outbox_file = self._write_outbox(sent.message_id, raw, source, outcome.outbox)

        self._events(sent, raw, source, sent_at, outcome)
        return outcome

    def _is_hosted(self, domain: str) -> bool:
        try:
            return self._hosted(domain)
        except Exception:
            log.exception("outbound: could not look up domain %s; treating it as external", domain)
            return False

    def _write_outbox(self, ses_message_id: str, raw: bytes, source: str, recipients: list[str]) -> Path:
        self._outbox.mkdir(parents=True, exist_ok=True)
        target = self._outbox / f"{ses_message_id}.eml"
        newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
        envelope = (
            f"Return-Path: <{source}>".encode()
            + newline
            + f"X-Mailroom-Outbox-To: {', '.join(recipients)}".encode()
            + newline
        )
        partial = target.with_suffix(".eml.partial")
        partial.write_bytes(envelope + raw)
        os.replace(partial, target)  # a reader never sees half a message
        log.info(
            "outbound: SES message %s for %s written to %s", ses_message_id, ", ".join(recipients), target
        )
        return target

    # ----------------------------------------------------------------------------- events

    def _events(self, sent: SentEmail, raw: bytes, source: str, sent_at: datetime, outcome: Outcome) -> None:
        wanted = {
            t
            for d in self._destinations
            if sent.configuration_set and d.configuration_set == sent.configuration_set
            for t in d.event_types
        }
        if not wanted:
            return
        mail = self._mail_object(sent, raw, source, sent_at)
        later = sent_at + timedelta(milliseconds=50)
        details: list[tuple[str, dict[str, Any]]] = [("Send", {"send": {}})]
        for group in (outcome.received, outcome.outbox):
            if group:
                details.append(("Delivery", _delivery(group, later, sent_at)))
        for address, behaviour in outcome.simulated.items():
            if behaviour in ("success", "ooto", "complaint"):
                details.append(("Delivery", _delivery([address], later, sent_at)))
            if behaviour == "complaint":
                details.append(("Complaint", _complaint(address, later)))
            elif behaviour == "bounce":
                details.append(
                    ("Bounce", _bounce([address], later, "General", "smtp; 550 5.1.1 user unknown"))
                )
            elif behaviour == "suppressionlist":
                reason = (
                    "Amazon SES did not send the message to this address because it is on the "
                    "suppression list for your account."
                )
                details.append(("Bounce", _bounce([address], later, "OnAccountSuppressionList", reason)))
        if outcome.refused:
            reason = "smtp; 550 5.1.1 recipient rejected: no SES receipt rule matches this address"
            details.append(("Bounce", _bounce(outcome.refused, later, "General", reason)))
        for event_type, body in details:
            if DESTINATION_TYPES[event_type] not in wanted:
                continue
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": DETAIL_TYPES[event_type],
                "source": "aws.ses",
                "account": self._account_id,
                "time": later.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self._region,
                "resources": [
                    f"arn:aws:ses:{self._region}:{self._account_id}:configuration-set/{sent.configuration_set}"
                ],
                "detail": {"eventType": event_type, "mail": mail, **body},
            }
            outcome.events.append(event)
            try:
                self._publish(event)
            except Exception:
                log.exception("outbound: publishing %s for %s failed", event_type, sent.message_id)

    def _mail_object(self, sent: SentEmail, raw: bytes, source: str, sent_at: datetime) -> dict[str, Any]:
        mail = ses.mail_object(
            raw,
            source=sent.from_address or source,
            destination=list(sent.recipients),
            message_id=sent.message_id,
            timestamp=sent_at,
        )
        from_domain = source.rpartition("@")[2]
        tags: dict[str, list[str]] = {
            "ses:configuration-set": [sent.configuration_set or ""],
            "ses:source-ip": ["127.0.0.1"],
            "ses:from-domain": [from_domain],
            "ses:caller-identity": ["mailroom-local"],
            "ses:outgoing-ip": ["127.0.0.1"],
        }
        tags.update({name: [value] for name, value in sent.tags.items()})
        mail.update(
            {
                "sourceArn": f"arn:aws:ses:{self._region}:{self._account_id}:identity/{from_domain}",
                "sendingAccountId": self._account_id,
                "tags": tags,
            }
        )
        return mail


def _delivery(recipients: Iterable[str], at: datetime, sent_at: datetime) -> dict[str, Any]:
    return {
        "delivery": {
            "timestamp": ses.iso_ms(at),
            "processingTimeMillis": max(0, int((at - sent_at).total_seconds() * 1000)),
            "recipients": list(recipients),
            "smtpResponse": "250 2.0.0 OK (local)",
            "reportingMTA": REPORTING_MTA,
            "remoteMtaIp": "127.0.0.1",
        }
    }


def _bounce(recipients: Iterable[str], at: datetime, sub_type: str, diagnostic: str) -> dict[str, Any]:
    return {
        "bounce": {
            "feedbackId": f"local-{uuid.uuid4()}",
            "bounceType": "Permanent",
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {"emailAddress": r, "action": "failed", "status": "5.1.1", "diagnosticCode": diagnostic}
                for r in recipients
            ],
            "timestamp": ses.iso_ms(at),
            "reportingMTA": f"dns; {REPORTING_MTA}",
        }
    }


def _complaint(address: str, at: datetime) -> dict[str, Any]:
    return {
        "complaint": {
            "feedbackId": f"local-{uuid.uuid4()}",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": ses.iso_ms(at),
            "userAgent": "Amazon SES Mailbox Simulator",
            "complaintFeedbackType": "abuse",
            "arrivalDate": ses.iso_ms(at),
        }
    }

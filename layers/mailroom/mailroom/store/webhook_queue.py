"""The webhook queue: one message per delivery chain, consumed by the delivery function.

A message names its delivery (organization, webhook, delivery, generation) and usually carries the
rendered payload, so a delivery needs no read of the event. Waiting for a retry keeps the message
and moves its visibility (``change_visibility``); SQS caps that at 12 hours from the receive and
``DelaySeconds`` at 15 minutes, so longer waits come back early and wait again (``send`` with a
delay re-enqueues a fresh copy when a message has been received too often).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws

MAX_DELAY_SECONDS = 900  # SQS DelaySeconds limit
MAX_VISIBILITY_SECONDS = 12 * 3600 - 900  # SQS allows 12 h from the receive; keep a margin
# Payloads above this are not carried in the message (the SQS limit is 256 KiB with attributes).
MAX_INLINE_PAYLOAD_BYTES = 200 * 1024
MESSAGE_VERSION = 1


class QueueNotConfigured(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class DeliveryMessage:
    org_id: str
    webhook_id: str
    delivery_id: str
    event_id: str
    generation: int
    not_before: float  # epoch seconds; the delivery item's next_attempt_at is the authority
    payload: str | None  # the exact JSON body to send, or None to render it from the event

    def body(self) -> str:
        return json.dumps(
            {
                "v": MESSAGE_VERSION,
                "org_id": self.org_id,
                "webhook_id": self.webhook_id,
                "delivery_id": self.delivery_id,
                "event_id": self.event_id,
                "generation": self.generation,
                "not_before": self.not_before,
                "payload": self.payload,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, raw: str) -> DeliveryMessage:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
            raise ValueError("not a webhook delivery message")
        payload = data.get("payload")
        return cls(
            org_id=str(data["org_id"]),
            webhook_id=str(data["webhook_id"]),
            delivery_id=str(data["delivery_id"]),
            event_id=str(data["event_id"]),
            generation=int(data["generation"]),
            not_before=float(data.get("not_before") or 0),
            payload=payload if isinstance(payload, str) else None,
        )


def inline_payload(payload: str) -> str | None:
    return payload if len(payload.encode()) <= MAX_INLINE_PAYLOAD_BYTES else None


def _sqs() -> Any:
    return aws.client("sqs")


def _queue_url() -> str:
    url = get_settings().webhook_queue_url
    if not url:
        raise QueueNotConfigured("MAILROOM_WEBHOOK_QUEUE_URL is not set")
    return url


def send(messages: Sequence[DeliveryMessage], *, delay_seconds: int = 0) -> None:
    """Send every message (SendMessageBatch, 10 at a time); raises if some could not be sent."""
    url = _queue_url()
    delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
    for start in range(0, len(messages), 10):
        pending = {str(i): m for i, m in enumerate(messages[start : start + 10])}
        for retry in range(5):
            if retry:
                time.sleep(0.05 * 2**retry)
            response = _sqs().send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": entry_id, "MessageBody": m.body(), "DelaySeconds": delay}
                    for entry_id, m in pending.items()
                ],
            )
            failed = response.get("Failed") or []
            # Sender faults (a malformed entry) will not succeed on a retry.
            if any(f.get("SenderFault") for f in failed):
                raise RuntimeError(f"SQS refused webhook messages: {failed}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                break
        else:
            raise RuntimeError(f"{len(pending)} webhook messages could not be sent")


def change_visibility(receipt_handle: str, seconds: float) -> None:
    """Hide the message for ``seconds`` (whole seconds, rounded down: the delivery function attempts
    a message that is back less than a second early instead of parking it again)."""
    _sqs().change_message_visibility(
        QueueUrl=_queue_url(),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(MAX_VISIBILITY_SECONDS, int(seconds))),
    )


def dead_letter(message_body: str, *, reason: str, delivery_id: str) -> None:
    """Park a delivery that exhausted its retries where the operator's alarm sees it."""
    url = get_settings().webhook_dlq_url
    if not url:
        raise QueueNotConfigured("MAILROOM_WEBHOOK_DLQ_URL is not set")
    _sqs().send_message(
        QueueUrl=url,
        MessageBody=message_body,
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason},
            "delivery_id": {"DataType": "String", "StringValue": delivery_id},
        },
    )

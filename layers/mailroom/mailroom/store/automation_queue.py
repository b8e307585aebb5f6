"""The automation actions queue (``AutomationActionsQueue``): one message per asynchronous action of
one received message (``domain.automation_runs.PendingAction``), sent by the stream dispatcher and
consumed by the automation worker.

A retry keeps its message: the worker moves its visibility to the next attempt's time (SQS allows
12 hours from the receive) and reports it as a batch item failure. A run that exhausted its retries
is recorded as failed and a copy of its message parked in the dead-letter queue, where the
operator's alarm sees it and a redrive (SQS's ``StartMessageMoveTask``) runs it again; the queue's
own redrive policy only catches messages the worker could not handle at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mailroom.domain.automation_runs import PendingAction
from mailroom.settings import get_settings
from mailroom.store import aws

MAX_VISIBILITY_SECONDS = 12 * 3600 - 900  # SQS's limit is 12 h from the receive; keep a margin
BATCH = 10  # SendMessageBatch's limit


class QueueNotConfigured(RuntimeError):
    pass


def _sqs() -> Any:
    return aws.client("sqs")


def _url() -> str:
    url = get_settings().automation_queue_url
    if not url:
        raise QueueNotConfigured("MAILROOM_AUTOMATION_QUEUE_URL is not set")
    return url


def send(actions: Sequence[PendingAction]) -> list[int]:
    """Enqueue every action (SendMessageBatch, ten a request, the failed entries retried a few
    times). Returns the indexes (into ``actions``) that could not be sent; a sender fault (a
    malformed entry) raises."""
    url = _url()
    unsent: list[int] = []
    for start in range(0, len(actions), BATCH):
        pending = {str(start + i): a for i, a in enumerate(actions[start : start + BATCH])}
        for attempt in range(4):
            if attempt:
                time.sleep(0.05 * 2**attempt)
            response = _sqs().send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": entry_id, "MessageBody": a.body()} for entry_id, a in pending.items()],
            )
            failed = response.get("Failed") or []
            if any(f.get("SenderFault") for f in failed):
                raise RuntimeError(f"SQS refused automation messages: {failed}")
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                break
        unsent += [int(entry_id) for entry_id in pending]
    return unsent


def change_visibility(receipt_handle: str, seconds: float) -> None:
    """Keep the message hidden for ``seconds`` more (whole seconds, capped at SQS's limit)."""
    _sqs().change_message_visibility(
        QueueUrl=_url(),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(MAX_VISIBILITY_SECONDS, int(seconds))),
    )


def dead_letter(body: str, *, reason: str, run_id: str) -> None:
    """Park the message of a run that exhausted its retries in the dead-letter queue."""
    url = get_settings().automation_dlq_url
    if not url:
        raise QueueNotConfigured("MAILROOM_AUTOMATION_DLQ_URL is not set")
    _sqs().send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason},
            "run_id": {"DataType": "String", "StringValue": run_id},
        },
    )

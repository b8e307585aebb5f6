"""Entry points for queue-driven functions (SQS event sources with ReportBatchItemFailures)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mailroom.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def _remaining_ms(context: Any) -> int:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    # Without a Lambda context (a direct call) there is no deadline to respect.
    return int(remaining()) if callable(remaining) else 10**9


def mailbox_purge(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Purge deleted mailboxes' mail, one job per record. A record whose purge raises is reported
    as failed (SQS retries it, then the DLQ keeps it); one that runs short of time is sent again."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from mailroom.services import deletion
    from mailroom.store.table import Table

    table = Table()

    def handle(record: SQSRecord) -> None:
        job = json.loads(record.body)
        if (
            not isinstance(job, dict)
            or not isinstance(job.get("org_id"), str)
            or not isinstance(job.get("mailbox_id"), str)
        ):
            raise ValueError(f"not a purge job: {record.body[:200]!r}")
        org_id, mailbox_id = job["org_id"], job["mailbox_id"]
        done = deletion.purge(table, org_id, mailbox_id, remaining_ms=lambda: _remaining_ms(context))
        if not done:
            deletion.requeue(table, org_id, mailbox_id)
        logger().info("mailbox purge", extra={"org_id": org_id, "mailbox_id": mailbox_id, "done": done})

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )

"""SQS queues (event source mappings with ReportBatchItemFailures): webhook delivery and mailbox
purge jobs.

Delivery: Powertools' async batch processor runs the batch's records concurrently; a record is
reported failed when its message must stay in the queue (a retry is scheduled through its
visibility timeout, or handling it raised: then its message is made visible again after a short
backoff, not after the queue's visibility timeout of six function timeouts).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import TYPE_CHECKING, Any

from mailroom.entry.runtime import lambda_entry, remaining_ms
from mailroom.loops import run_on_thread_loop
from mailroom.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


class RetryScheduled(Exception):
    """Not an error: the message waits in the queue for its next attempt."""


@functools.cache
def thread_loop_processor() -> type[Any]:
    """Powertools' async batch processor, running on this thread's loop: outside Lambda it uses
    ``asyncio.run``, which closes the loop and leaves the thread without one (see mailroom.loops)."""
    from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor

    class ThreadLoopProcessor(AsyncBatchProcessor):
        def async_process(self) -> list[tuple[Any, ...]]:
            async def all_records() -> list[tuple[Any, ...]]:
                return list(await asyncio.gather(*[self._async_process_record(r) for r in self.records]))

            return run_on_thread_loop(all_records())

    return ThreadLoopProcessor


@lambda_entry
def webhook_delivery(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import EventType, async_process_partial_response

    from mailroom.services.webhook_delivery import BatchDelivery, Job, Outcome
    from mailroom.settings import get_settings
    from mailroom.store.retry import retried
    from mailroom.store.table import Table
    from mailroom.store.webhook_queue import DeliveryMessage

    jobs: dict[str, Job] = {}
    for raw in event.get("Records") or []:
        try:
            message = DeliveryMessage.parse(raw["body"])
        except (KeyError, TypeError, ValueError):
            continue  # its handler fails it; the redrive policy sends it to the dead-letter queue
        jobs[raw["messageId"]] = Job(
            message_id=raw["messageId"],
            receipt_handle=raw["receiptHandle"],
            receive_count=int((raw.get("attributes") or {}).get("ApproximateReceiveCount", "1")),
            body=raw["body"],
            message=message,
        )
    batch = BatchDelivery(Table(), get_settings())
    try:
        retried(lambda: batch.prefetch([j.message for j in jobs.values()]))
    except Exception:
        for job in jobs.values():
            batch.back_off(job)
        raise

    async def handle(record: SQSRecord) -> None:
        job = jobs.get(record.message_id)
        if job is None:
            raise ValueError(f"not a webhook delivery message: {record.body[:200]!r}")
        try:
            outcome = await batch.process(job)
        except Exception:
            await asyncio.get_running_loop().run_in_executor(None, batch.back_off, job)
            raise
        if outcome is Outcome.WAIT:
            raise RetryScheduled(job.message.delivery_id)

    processor = thread_loop_processor()(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = dict(
        async_process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )
    )
    for kind, count in batch.outcomes.items():
        if count:
            metrics().add_metric(name=f"WebhookDeliveries{kind.capitalize()}", unit="Count", value=count)
    return response


@lambda_entry
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
        done = deletion.purge(table, org_id, mailbox_id, remaining_ms=lambda: remaining_ms(context))
        if not done:
            deletion.requeue(table, org_id, mailbox_id)
        logger().info("mailbox purge", extra={"org_id": org_id, "mailbox_id": mailbox_id, "done": done})

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )


@lambda_entry
def smtp_relay_test(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run ``POST /api/v1/smtp:test`` jobs, one per record (services/smtp_relays.py)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from mailroom.services import smtp_relays
    from mailroom.store.table import Table

    table = Table()

    def handle(record: SQSRecord) -> None:
        job = json.loads(record.body)
        if not isinstance(job, dict) or not all(isinstance(job.get(k), str) for k in ("org_id", "job_id")):
            raise ValueError(f"not an SMTP test job: {record.body[:200]!r}")
        done = smtp_relays.run_test(table, job["org_id"], job["job_id"])
        logger().info("smtp relay test", extra={"job_id": job["job_id"], "status": done.get("status")})

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )


@lambda_entry
def verify_bulk(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Verify bulk jobs' chunks, one per record (services/verify_bulk.py)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from mailroom.services import verify_bulk as service
    from mailroom.store.table import Table

    table = Table()

    def handle(record: SQSRecord) -> None:
        work = json.loads(record.body)
        if (
            not isinstance(work, dict)
            or not all(isinstance(work.get(k), str) for k in ("org_id", "job_id"))
            or not isinstance(work.get("chunk"), int)
            or not isinstance(work.get("emails"), list)
        ):
            raise ValueError(f"not a verification chunk: {record.body[:200]!r}")
        outcome = service.process_chunk(table, work["org_id"], work["job_id"], work["chunk"], work["emails"])
        logger().info(
            "verification chunk", extra={"job_id": work["job_id"], "chunk": work["chunk"], "outcome": outcome}
        )

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )

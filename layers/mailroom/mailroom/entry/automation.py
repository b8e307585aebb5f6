"""The automation's asynchronous actions (docs/automation-execution.md): the dispatcher (the table's
DynamoDB stream: new processing-log entries with pending actions) and the worker (the automation
actions queue), both reporting partial batch failures.

Dispatch: the event source's filter passes only INSERTs of ``rule_log`` items whose
``automation_pending`` is not 0; a record whose messages could not all be sent is reported by its
sequence number, and Lambda retries from there (sending again is harmless: the worker's claim runs
each action once).

Worker: Powertools' async batch processor runs the batch's records concurrently (webhook POSTs wait
on the network together); a record is reported failed when its message must stay in the queue (a
retry was scheduled through its visibility, or handling it raised: then it comes back after a short
backoff).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mailroom.entry.queues import RetryScheduled, thread_loop_processor
from mailroom.entry.runtime import lambda_entry
from mailroom.entry.streams import stream_image
from mailroom.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


class NotDispatched(Exception):
    """Some of the record's actions could not be enqueued: the stream retries from this record."""


@lambda_entry
def dispatch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from mailroom.services.automation_dispatch import dispatch as enqueue
    from mailroom.store.table import deserialize

    sequences: list[str] = []
    entries = []
    for record in event.get("Records") or []:
        image = (record.get("dynamodb") or {}).get("NewImage")
        if record.get("eventName") != "INSERT" or not image:
            continue  # the event source's filter should not let these through
        sequences.append(str(record["dynamodb"]["SequenceNumber"]))
        entries.append(deserialize(stream_image(image)))
    result = enqueue(entries)
    failed = {sequences[position] for position in result.failed}
    if result.sent:
        metrics().add_metric(name="AutomationActionsQueued", unit="Count", value=result.sent)

    def handle(record: DynamoDBRecord) -> None:
        sequence = str(record.raw_event["dynamodb"]["SequenceNumber"])
        if sequence in failed:
            raise NotDispatched(sequence)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )


@lambda_entry
def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import EventType, async_process_partial_response

    from mailroom.domain.automation_runs import PendingAction
    from mailroom.services.automation_worker import BatchRunner, Disposition, QueuedAction
    from mailroom.settings import get_settings
    from mailroom.store.retry import retried
    from mailroom.store.table import Table

    queued: dict[str, QueuedAction] = {}
    for raw in event.get("Records") or []:
        try:
            pending = PendingAction.parse(raw["body"])
        except (KeyError, TypeError, ValueError):
            continue  # its handler fails it; the redrive policy sends it to the dead-letter queue
        queued[raw["messageId"]] = QueuedAction(
            message_id=raw["messageId"],
            receipt_handle=raw["receiptHandle"],
            receive_count=int((raw.get("attributes") or {}).get("ApproximateReceiveCount", "1")),
            body=raw["body"],
            pending=pending,
        )
    runner = BatchRunner(Table(), get_settings())
    try:
        retried(lambda: runner.prefetch(list(queued.values())))
    except Exception:
        for item in queued.values():
            runner.back_off(item)
        raise

    async def handle(record: SQSRecord) -> None:
        item = queued.get(record.message_id)
        if item is None:
            raise ValueError(f"not an automation action message: {record.body[:200]!r}")
        try:
            disposition = await runner.process(item)
        except Exception:
            await asyncio.get_running_loop().run_in_executor(None, runner.back_off, item)
            raise
        if disposition is Disposition.WAIT:
            raise RetryScheduled(item.pending.run_id)

    processor = thread_loop_processor()(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = dict(
        async_process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )
    )
    for kind, count in runner.outcomes.items():
        if count:
            metrics().add_metric(name=f"AutomationActions{kind.capitalize()}", unit="Count", value=count)
    if runner.outcomes:
        logger().info("automation batch", extra={"outcomes": dict(runner.outcomes)})
    return response

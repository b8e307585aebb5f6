"""Entry points of the webhook pipeline: the fan-out (DynamoDB stream of the table) and the delivery
(the webhook queue), both reporting partial batch failures.

Fan-out: the event source's filter passes only INSERTs of event items; each record is fanned out on
its own and a failed one is reported by its sequence number, so Lambda retries from there (what the
earlier records created is found again: the fan-out is idempotent).

Delivery: Powertools' async batch processor runs the batch's records concurrently; a record is
reported failed when its message must stay in the queue (a retry is scheduled through its
visibility timeout, or handling it raised).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import warnings
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from mailroom.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from mailroom.store.table import Item

T = TypeVar("T")


class RetryScheduled(Exception):
    """Not an error: the message waits in the queue for its next attempt."""


def run_on_thread_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this thread's event loop, creating one if needed and never closing it.

    ``asyncio.run`` would close the loop and leave the thread without one, which breaks Mangum on a
    thread that serves API functions next (the local stack shares worker threads); Lambda's Python
    runtime and Mangum keep one loop per thread the same way.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop.run_until_complete(coro)


@functools.cache
def _thread_loop_processor() -> type[Any]:
    """Powertools' async batch processor, running on this thread's loop: outside Lambda it uses
    ``asyncio.run``, which closes the loop and leaves the thread without one (see above)."""
    from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor

    class ThreadLoopProcessor(AsyncBatchProcessor):
        def async_process(self) -> list[tuple[Any, ...]]:
            async def all_records() -> list[tuple[Any, ...]]:
                return list(await asyncio.gather(*[self._async_process_record(r) for r in self.records]))

            return run_on_thread_loop(all_records())

    return ThreadLoopProcessor


def _stream_image(image: dict[str, Any]) -> dict[str, Any]:
    """A stream record's image as the low-level client returns items (binary values as bytes)."""

    def convert(value: dict[str, Any]) -> dict[str, Any]:
        ((kind, inner),) = value.items()
        if kind == "B":
            return {"B": base64.b64decode(inner)}
        if kind == "BS":
            return {"BS": [base64.b64decode(v) for v in inner]}
        if kind == "M":
            return {"M": {k: convert(v) for k, v in inner.items()}}
        if kind == "L":
            return {"L": [convert(v) for v in inner]}
        return value

    return {name: convert(value) for name, value in image.items()}


def event_fanout(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from mailroom.services.webhook_fanout import FanoutResult, fan_out_many
    from mailroom.store import webhooks
    from mailroom.store.table import Table, deserialize

    table = Table()
    # One read per organization per batch: every event of the batch was written before it, so any
    # webhook that existed when one of them happened is already there.
    known: dict[str, list[Item]] = {}

    def webhooks_of(org_id: str) -> list[Item]:
        if org_id not in known:
            known[org_id] = webhooks.all_of(table, org_id)
        return known[org_id]

    # The batch is fanned out as a whole first (its messages sent ten to a request); Powertools
    # then reports the records whose fan-out failed.
    sequences: list[str] = []
    items: list[Item] = []
    for record in event.get("Records") or []:
        image = (record.get("dynamodb") or {}).get("NewImage")
        if record.get("eventName") != "INSERT" or not image:
            continue  # the event source's filter should not let these through
        item = deserialize(_stream_image(image))
        if item.get("type") == "event":
            sequences.append(str(record["dynamodb"]["SequenceNumber"]))
            items.append(item)
    results, errors = fan_out_many(table, items, webhooks_of=webhooks_of)
    _flush_metrics({"WebhookDeliveriesCreated": sum(r.created for r in results if r is not None)})
    outcome: dict[str, tuple[Item, FanoutResult | None, BaseException | None]] = {
        seq: (item, result, error)
        for seq, item, result, error in zip(sequences, items, results, errors, strict=True)
    }

    def handle(record: DynamoDBRecord) -> None:
        found = outcome.get(str(record.raw_event["dynamodb"]["SequenceNumber"]))
        if found is None:
            return
        item, result, error = found
        if error is not None:
            raise error
        if result is not None and (result.messages or result.skipped):
            logger().info(
                "event fanned out",
                extra={
                    "event_id": item.get("event_id"),
                    "event_type": item.get("event_type"),
                    "deliveries_created": result.created,
                    "resent": result.resent,
                    "skipped": result.skipped,
                },
            )

    # All records failing is reported like some failing (Lambda retries from the first), not raised:
    # bisecting is for crashes (a timeout), where the failing record cannot be named.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    )


def webhook_delivery(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import EventType, async_process_partial_response

    from mailroom.services.webhook_delivery import BatchDelivery, Job, Outcome
    from mailroom.settings import get_settings
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
    batch.prefetch([j.message for j in jobs.values()])

    async def handle(record: SQSRecord) -> None:
        job = jobs.get(record.message_id)
        if job is None:
            raise ValueError(f"not a webhook delivery message: {record.body[:200]!r}")
        if await batch.process(job) is Outcome.WAIT:
            raise RetryScheduled(job.message.delivery_id)

    processor = _thread_loop_processor()(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = dict(
        async_process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )
    )
    _flush_metrics({f"WebhookDeliveries{k.capitalize()}": n for k, n in batch.outcomes.items()})
    return response


def _flush_metrics(counts: dict[str, int]) -> None:
    from mailroom.observability import metrics

    for name, value in counts.items():
        if value:
            metrics().add_metric(name=name, unit="Count", value=value)
    # Flush only what was recorded: an empty flush warns on every invocation.
    if metrics().metric_set:
        metrics().flush_metrics()

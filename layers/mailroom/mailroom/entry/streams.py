"""The webhook pipeline's sources: the fan-out (the table's DynamoDB stream) and the delivery (the
webhook queue, in ``entry.queues``), both reporting partial batch failures.

Fan-out: the event source's filter passes only INSERTs of event items; each record is fanned out on
its own and a failed one is reported by its sequence number, so Lambda retries from there (what the
earlier records created is found again: the fan-out is idempotent).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from mailroom.entry.runtime import lambda_entry
from mailroom.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    from mailroom.store.table import Item


def stream_image(image: dict[str, Any]) -> dict[str, Any]:
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


@lambda_entry
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
        item = deserialize(stream_image(image))
        if item.get("type") == "event":
            sequences.append(str(record["dynamodb"]["SequenceNumber"]))
            items.append(item)
    results, errors = fan_out_many(table, items, webhooks_of=webhooks_of)
    created = sum(r.created for r in results if r is not None)
    if created:
        metrics().add_metric(name="WebhookDeliveriesCreated", unit="Count", value=created)
    _push_to_websockets(table, [item for item, error in zip(items, errors, strict=True) if error is None])
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


def _push_to_websockets(table: Any, items: list[Item]) -> None:
    """The same events to the WebSocket connections that subscribe to them (services.realtime_fanout).
    Best effort: a failure here is logged, never a reason for the stream to redo the batch (which
    would send the webhooks' messages again)."""
    from mailroom.settings import get_settings

    if not items or not get_settings().websocket_endpoint:
        return
    from mailroom.services.realtime_fanout import push
    from mailroom.store import ws_connections

    known: dict[str, list[Item]] = {}

    def connections_of(org_id: str) -> list[Item]:
        if org_id not in known:
            known[org_id] = ws_connections.of_organization(table, org_id)
        return known[org_id]

    try:
        result = push(table, items, connections_of=connections_of)
    except Exception:
        logger().exception("events not pushed to WebSocket connections")
        return
    if result.frames:
        metrics().add_metric(name="WebSocketFramesPushed", unit="Count", value=result.frames)
    if result.gone or result.failed:
        logger().info(
            "websocket push", extra={"frames": result.frames, "gone": result.gone, "failed": result.failed}
        )

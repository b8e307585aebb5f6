"""Fan-out: an event recorded in an organization's stream becomes one delivery (and one queue
message) per webhook subscribed to it.

This is the outbox's relay. Events are written in the same transaction as the change they report;
DynamoDB Streams hands each new event item to the fan-out function, which runs this for it. It is
idempotent per (event, webhook): the delivery item is created with a conditional put, so a stream
batch retried after a failure finds it and does not create a second one. A delivery that exists
but was never attempted is sent again, since the earlier run may have died between writing it and
sending its message (a duplicate message is harmless: the receiver sees the same ``webhook-id``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mailroom import clock
from mailroom.domain import webhooks as rules
from mailroom.observability import logger, traced
from mailroom.store import webhook_deliveries as deliveries
from mailroom.store import webhook_queue, webhooks
from mailroom.store.table import Item, Table


@dataclass
class FanoutResult:
    created: int = 0
    resent: int = 0
    skipped: int = 0
    messages: list[webhook_queue.DeliveryMessage] = field(default_factory=list)
    created_for: Counter[tuple[str, str]] = field(default_factory=Counter)  # (org, webhook) -> n


def targets(event: Item, candidates: list[Item]) -> list[Item]:
    """The webhooks an event goes to.

    A test event goes to the one webhook it names (enabled or not: testing a fixed endpoint before
    enabling it again is the point). Other events go to enabled webhooks subscribed to the type
    (and mailbox) that existed when the event happened, so a webhook never receives history it was
    not there for (except through an explicit replay).
    """
    if event["event_type"] == rules.TEST_EVENT_TYPE:
        wanted = (event.get("data") or {}).get("webhook_id")
        return [w for w in candidates if w["id"] == wanted]
    return [
        w
        for w in candidates
        if w.get("enabled")
        and w["created_at"] <= event["created_at"]
        and rules.matches(w, event["event_type"], event.get("data") or {})
    ]


def prepare(
    table: Table,
    event: Item,
    *,
    webhooks_of: Callable[[str], list[Item]],
    now: datetime | None = None,
) -> FanoutResult:
    """Create the deliveries of one event; the messages to send for them are returned, not sent."""
    now = now or clock.utcnow()
    now_iso, now_epoch = clock.isoformat(now), int(now.timestamp())
    result = FanoutResult()
    chosen = targets(event, webhooks_of(event["org_id"]))
    if not chosen:
        return result
    body = rules.encode_payload(rules.payload(event)).decode()
    trigger = "test" if event["event_type"] == rules.TEST_EVENT_TYPE else "event"
    for webhook in chosen:
        delivery = deliveries.new_delivery(
            event, webhook, trigger=trigger, now_iso=now_iso, now_epoch=now_epoch
        )
        if deliveries.create(table, delivery):
            result.created += 1
            result.created_for[(webhook["org_id"], webhook["id"])] += 1
        else:
            existing = table.get(delivery["PK"], delivery["SK"])
            if existing is None or not _never_sent(existing):
                result.skipped += 1
                continue
            delivery = existing
            result.resent += 1
        result.messages.append(message_for(delivery, body, not_before=now.timestamp()))
    return result


@traced
def fan_out_many(
    table: Table,
    events: list[Item],
    *,
    webhooks_of: Callable[[str], list[Item]],
    now: datetime | None = None,
) -> tuple[list[FanoutResult | None], list[BaseException | None]]:
    """Fan out a stream batch: deliveries one event at a time, their messages sent together (ten a
    request) and the delivery counts moved once per webhook. Per event: its result, or the error
    that failed it (an event fails when one of its messages could not be sent)."""
    results: list[FanoutResult | None] = [None] * len(events)
    errors: list[BaseException | None] = [None] * len(events)
    outgoing: list[tuple[int, webhook_queue.DeliveryMessage]] = []
    created: Counter[tuple[str, str]] = Counter()
    for index, event in enumerate(events):
        try:
            result = prepare(table, event, webhooks_of=webhooks_of, now=now)
        except Exception as exc:
            errors[index] = exc
            continue
        results[index] = result
        outgoing += [(index, m) for m in result.messages]
        created.update(result.created_for)
    for start in range(0, len(outgoing), 10):
        chunk = outgoing[start : start + 10]
        try:
            webhook_queue.send([m for _, m in chunk])
        except Exception as exc:
            for index, _ in chunk:
                errors[index] = exc
    for (org_id, webhook_id), count in created.items():
        try:
            webhooks.count_deliveries(table, org_id, webhook_id, count)
        except Exception:
            # A display counter: losing an increment must not make the stream redo the batch.
            logger().exception("delivery count not updated", extra={"webhook_id": webhook_id})
    return results, errors


def fan_out(
    table: Table,
    event: Item,
    *,
    webhooks_of: Callable[[str], list[Item]],
    now: datetime | None = None,
) -> FanoutResult:
    """Fan out one event; raises if its messages could not be sent."""
    results, errors = fan_out_many(table, [event], webhooks_of=webhooks_of, now=now)
    if errors[0] is not None:
        raise errors[0]
    result = results[0]
    assert result is not None
    return result


def _never_sent(delivery: Item | None) -> bool:
    return (
        delivery is not None
        and delivery.get("state") == deliveries.PENDING
        and int(delivery.get("generation", 1)) == 1
        and int(delivery.get("attempt_count", 0)) == 0
    )


def message_for(delivery: Item, body: str | None, *, not_before: float) -> webhook_queue.DeliveryMessage:
    return webhook_queue.DeliveryMessage(
        org_id=delivery["org_id"],
        webhook_id=delivery["webhook_id"],
        delivery_id=delivery["id"],
        event_id=delivery["event_id"],
        generation=int(delivery.get("generation", 1)),
        not_before=not_before,
        payload=webhook_queue.inline_payload(body) if body is not None else None,
    )

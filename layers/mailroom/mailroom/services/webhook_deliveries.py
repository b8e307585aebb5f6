"""A webhook's deliveries through the API: listing and reading them, a test event, and sending
events again (a manual retry of one delivery, a replay of a time range).

A retry or a replay starts a new chain of attempts on the delivery (``store.webhook_deliveries``:
the next generation, its own retry schedule), so an older chain waking up stops instead of writing
over it. Events are kept ``RETENTION_SECONDS``; a delivery whose event is gone cannot be sent again.
Both need the webhook enabled (409 ``webhook_disabled``): a disabled webhook gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import webhooks as rules
from mailroom.errors import MailroomError
from mailroom.services.webhook_fanout import message_for
from mailroom.store import events, keys, webhook_queue, webhooks
from mailroom.store import webhook_deliveries as deliveries
from mailroom.store.events import RETENTION_SECONDS
from mailroom.store.table import Item, Page, Table

REPLAY_MAX_EVENTS = 500  # per request; the response's cursor continues


class EventExpired(Exception):
    pass


def delivery_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "webhook_id": item["webhook_id"],
        "event_id": item["event_id"],
        "event_type": item["event_type"],
        "event_created_at": item.get("event_created_at"),
        "state": item["state"],
        "failure_reason": item.get("failure_reason"),
        "attempt_count": int(item.get("attempt_count", 0)),
        "next_attempt_at": item.get("next_attempt_at") if item["state"] == deliveries.PENDING else None,
        "last_attempt_at": item.get("last_attempt_at"),
        "completed_at": item.get("completed_at"),
        "trigger": item.get("trigger"),
        "attempts": [
            {
                "attempt": int(a.get("attempt", 0)),
                "at": a.get("at"),
                "status_code": a.get("status_code"),
                "duration_ms": a.get("duration_ms"),
                "error": a.get("error"),
                "response": a.get("response"),
                "trigger": a.get("trigger"),
            }
            for a in item.get("attempts") or []
        ],
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def send_test(table: Table, webhook: Item) -> Item:
    """Record a ``webhook.test`` event for this webhook only; the pipeline delivers it."""
    event = events.new_event(
        webhook["org_id"],
        rules.TEST_EVENT_TYPE,
        {"webhook_id": webhook["id"], "message": "A test event from Mailroom: this endpoint is reachable."},
    )
    table.put(event, condition="attribute_not_exists(PK)")
    return event


def _event_payload(table: Table, org_id: str, event_id: str) -> str:
    event = table.get(keys.events_pk(org_id), event_id.partition("_")[2])
    if event is None:
        raise EventExpired(event_id)
    return rules.encode_payload(rules.payload(event)).decode()


def retry_delivery(table: Table, webhook: Item, delivery: Item) -> Item:
    """Attempt a delivery again now, whatever its state, as a new chain with its own schedule.
    EventExpired when its event is past retention."""
    body = _event_payload(table, webhook["org_id"], delivery["event_id"])
    restarted = deliveries.restart(table, webhook["org_id"], webhook["id"], delivery["id"], trigger="retry")
    if restarted is None:
        raise LookupError(delivery["id"])
    webhook_queue.send([message_for(restarted, body, not_before=clock.utcnow().timestamp())])
    return restarted


@dataclass
class ReplayResult:
    scanned: int = 0
    matched: int = 0
    replayed: int = 0
    skipped: int = 0
    next_cursor: str | None = None


def replay(
    table: Table,
    webhook: Item,
    *,
    since: datetime,
    until: datetime,
    include_succeeded: bool = False,
    cursor: str | None = None,
    max_events: int = REPLAY_MAX_EVENTS,
) -> ReplayResult:
    """Send again the events of a time range this webhook subscribes to: those it never got a
    delivery for (e.g. it was disabled, or created later) and those whose delivery failed; with
    ``include_succeeded``, every one. In-flight (pending) deliveries are left alone. At most
    ``max_events`` events are read per call; ``next_cursor`` continues."""
    org_id = webhook["org_id"]
    now = clock.utcnow()
    now_iso, now_epoch = clock.isoformat(now), int(now.timestamp())
    since_iso, until_iso = clock.isoformat(since), clock.isoformat(until)
    # An event's ULID is taken a moment before its created_at: start the key range a second early
    # and decide by created_at, or an event at the boundary would be missed.
    low = ids.ulid_bound(int(since.timestamp() * 1000) - 1000, upper=False)
    high = ids.ulid_bound(int(until.timestamp() * 1000), upper=True)
    allowed = (deliveries.FAILED, deliveries.SUCCEEDED) if include_succeeded else (deliveries.FAILED,)
    result = ReplayResult()
    messages: list[webhook_queue.DeliveryMessage] = []
    created = 0
    while result.scanned < max_events:
        page = table.query_page(
            partition=keys.events_pk(org_id),
            per_page=min(100, max_events - result.scanned),
            cursor=cursor,
            sk_between=(low, high),
        )
        for event in page.items:
            result.scanned += 1
            if not since_iso <= event["created_at"] <= until_iso:
                continue
            if event["event_type"] == rules.TEST_EVENT_TYPE or not rules.matches(
                webhook, event["event_type"], event.get("data") or {}
            ):
                continue
            result.matched += 1
            body = rules.encode_payload(rules.payload(event)).decode()
            delivery = deliveries.new_delivery(
                event, webhook, trigger="replay", now_iso=now_iso, now_epoch=now_epoch
            )
            if deliveries.create(table, delivery):
                created += 1
            else:
                restarted = deliveries.restart(
                    table, org_id, webhook["id"], delivery["id"], trigger="replay", allowed_states=allowed
                )
                if restarted is None:
                    result.skipped += 1
                    continue
                delivery = restarted
            messages.append(message_for(delivery, body, not_before=now.timestamp()))
            result.replayed += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    result.next_cursor = cursor
    if created:
        webhooks.count_deliveries(table, org_id, webhook["id"], created)
    webhook_queue.send(messages)
    return result


# --- the API's use cases -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryListing:
    page: Page
    views: list[dict[str, Any]]
    total: int


def list_deliveries(table: Table, webhook: Item, *, per_page: int, cursor: str | None) -> DeliveryListing:
    """Newest event first; the total is the webhook's maintained ``delivery_count``."""
    page = deliveries.list_page(table, webhook["org_id"], webhook["id"], per_page=per_page, cursor=cursor)
    views = [delivery_view(d) for d in page.items]
    return DeliveryListing(page, views, int(webhook.get("delivery_count", 0)))


def load_delivery(table: Table, webhook: Item, delivery_id: str) -> Item:
    delivery = deliveries.get(table, webhook["org_id"], webhook["id"], delivery_id)
    if delivery is None:
        raise errors.not_found("Delivery")
    return delivery


def _disabled() -> MailroomError:
    return errors.conflict(
        "The webhook is disabled.",
        code="webhook_disabled",
        hint='Enable it with PATCH {"enabled": true} first.',
    )


def test_event(table: Table, webhook: Item) -> dict[str, Any]:
    """Record a ``webhook.test`` event for this webhook; what it answers to follow its delivery."""
    event = send_test(table, webhook)
    return {
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "delivery_id": deliveries.delivery_id_for(event["event_id"]),
        "webhook_id": webhook["id"],
        "created_at": event["created_at"],
    }


def retry(table: Table, webhook: Item, delivery_id: str) -> dict[str, Any]:
    """A manual retry: 404 for an unknown delivery, 409 ``webhook_disabled`` or ``event_expired``."""
    delivery = load_delivery(table, webhook, delivery_id)
    if not webhook.get("enabled"):
        raise _disabled()
    try:
        restarted = retry_delivery(table, webhook, delivery)
    except EventExpired as exc:
        raise errors.conflict(
            "The delivery's event is past its retention; it cannot be sent again.", code="event_expired"
        ) from exc
    except LookupError as exc:
        raise errors.not_found("Delivery") from exc
    return delivery_view(restarted)


def replay_range(
    table: Table,
    webhook: Item,
    *,
    since: datetime,
    until: datetime | None,
    include_succeeded: bool,
    cursor: str | None,
) -> dict[str, Any]:
    """``replay`` for an API request: the webhook enabled (409 ``webhook_disabled``), ``since`` not
    after ``until`` (default: now) and within the events' retention (422 on ``since``)."""
    if not webhook.get("enabled"):
        raise _disabled()
    now = clock.utcnow()
    until = until or now
    if since > until:
        raise errors.validation("since must not be after until", field="since")
    if since < now - timedelta(seconds=RETENTION_SECONDS):
        raise errors.validation("events are kept 30 days; since is older than that", field="since")
    result = replay(
        table, webhook, since=since, until=until, include_succeeded=include_succeeded, cursor=cursor
    )
    return {
        "scanned": result.scanned,
        "matched": result.matched,
        "replayed": result.replayed,
        "skipped": result.skipped,
        "next_cursor": result.next_cursor,
    }

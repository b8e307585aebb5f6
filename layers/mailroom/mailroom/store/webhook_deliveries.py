"""Deliveries: one item per (event, webhook), holding its state and its attempts.

The key is ``ORG#<org>#WEBHOOK#<wh>#DELIVERIES`` / ``<event ulid>``, so creating a delivery with
``attribute_not_exists`` is the fan-out's idempotency check (a stream batch that is retried finds
its deliveries already there), and a webhook's deliveries list newest first with one Query a page.

``generation`` orders the chains of attempts: the fan-out starts generation 1; a manual retry or a
replay starts the next one (its own retry schedule, counted in ``chain_attempts``). Every write by
the delivery function is conditional on the generation and the attempt count it read, so an older
chain that wakes up after a newer one started stops instead of writing over it.
"""

from __future__ import annotations

from typing import Any

from mailroom import clock
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, values

RETENTION_SECONDS = 30 * 86400
MAX_KEPT_ATTEMPTS = 25  # the newest ones; attempt_count keeps the total
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


def delivery_ulid(delivery_id: str) -> str:
    return delivery_id.partition("_")[2]


def delivery_id_for(event_id: str) -> str:
    """A delivery is named after its event: unique within its webhook, stable across retries."""
    return "dlv_" + event_id.partition("_")[2]


def new_delivery(event: Item, webhook: Item, *, trigger: str, now_iso: str, now_epoch: int) -> Item:
    ulid = event["event_id"].partition("_")[2]
    org_id, webhook_id = webhook["org_id"], webhook["id"]
    return {
        "PK": keys.webhook_deliveries_pk(org_id, webhook_id),
        "SK": ulid,
        "type": "webhook_delivery",
        "id": "dlv_" + ulid,
        "org_id": org_id,
        "webhook_id": webhook_id,
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "event_created_at": event["created_at"],
        "state": PENDING,
        "generation": 1,
        "chain_attempts": 0,
        "attempt_count": 0,
        "attempts": [],
        "next_attempt_at": now_iso,
        "trigger": trigger,
        "created_at": now_iso,
        "updated_at": now_iso,
        "ttl": now_epoch + RETENTION_SECONDS,
    }


def create(table: Table, delivery: Item) -> bool:
    """Write a new delivery; False if it already exists (the fan-out ran for this pair before)."""
    try:
        table.put(delivery, condition="attribute_not_exists(PK)")
    except ConditionFailed:
        return False
    return True


def key(org_id: str, webhook_id: str, delivery_id: str) -> tuple[str, str]:
    return keys.webhook_deliveries_pk(org_id, webhook_id), delivery_ulid(delivery_id)


def get(table: Table, org_id: str, webhook_id: str, delivery_id: str) -> Item | None:
    return table.get(*key(org_id, webhook_id, delivery_id))


def list_page(table: Table, org_id: str, webhook_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.webhook_deliveries_pk(org_id, webhook_id),
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )


def record_attempt(
    table: Table,
    delivery: Item,
    *,
    attempt: dict[str, Any],
    state: str,
    next_attempt_at: str | None,
    failure_reason: str | None,
    now_iso: str,
    now_epoch: int,
) -> bool:
    """Append an attempt and set the outcome; False when another chain or attempt got there first."""
    attempts = [*(delivery.get("attempts") or []), attempt][-MAX_KEPT_ATTEMPTS:]
    fields: dict[str, Any] = {
        "attempts": attempts,
        "state": state,
        "attempt_count": int(delivery.get("attempt_count", 0)) + 1,
        "chain_attempts": int(delivery.get("chain_attempts", 0)) + 1,
        "last_attempt_at": attempt["at"],
        "updated_at": now_iso,
        "ttl": now_epoch + RETENTION_SECONDS,
        "next_attempt_at": next_attempt_at,
        "failure_reason": failure_reason,
        "completed_at": now_iso if state != PENDING else None,
    }
    return _conditional_set(table, delivery, fields)


def mark_failed(table: Table, delivery: Item, *, reason: str, now_iso: str) -> bool:
    """End a pending delivery without an attempt (its webhook was disabled)."""
    fields = {
        "state": FAILED,
        "failure_reason": reason,
        "next_attempt_at": None,
        "completed_at": now_iso,
        "updated_at": now_iso,
    }
    return _conditional_set(table, delivery, fields)


def _conditional_set(table: Table, delivery: Item, fields: dict[str, Any]) -> bool:
    """Write the delivery as read plus ``fields`` (None removes one), if nothing moved it since.

    A whole-item put under the same condition an update would carry: every other writer of a
    delivery (a new chain, the chain's own next attempt) changes ``generation``, ``chain_attempts``
    or ``state``, so nothing written meanwhile can be lost, and a put is the cheaper request.
    """
    updated = {k: v for k, v in {**delivery, **fields}.items() if v is not None}
    try:
        table.put(
            updated,
            condition="attribute_exists(PK) AND generation = :gen AND chain_attempts = :tries "
            "AND #state = :pending",
            names={"#state": "state"},
            expression_values=values(
                gen=int(delivery.get("generation", 1)),
                tries=int(delivery.get("chain_attempts", 0)),
                pending=PENDING,
            ),
        )
    except ConditionFailed:
        return False
    return True


def restart(
    table: Table,
    org_id: str,
    webhook_id: str,
    delivery_id: str,
    *,
    trigger: str,
    allowed_states: tuple[str, ...] = (PENDING, SUCCEEDED, FAILED),
) -> Item | None:
    """Start a new chain of attempts now (manual retry, replay): the next generation, its own retry
    schedule. None when the delivery is gone or not in ``allowed_states``."""
    now = clock.utcnow()
    now_iso = clock.isoformat(now)
    states = {f":s{i}": s for i, s in enumerate(allowed_states)}
    try:
        return table.update(
            *key(org_id, webhook_id, delivery_id),
            "SET #state = :pending, chain_attempts = :zero, next_attempt_at = :now, updated_at = :now, "
            "#trigger = :trigger, #ttl = :ttl ADD generation :one REMOVE completed_at, failure_reason",
            condition=f"attribute_exists(PK) AND #state IN ({', '.join(states)})",
            names={"#state": "state", "#trigger": "trigger", "#ttl": "ttl"},
            expression_values=values(
                pending=PENDING,
                zero=0,
                now=now_iso,
                trigger=trigger,
                ttl=int(now.timestamp()) + RETENTION_SECONDS,
                one=1,
                **{k[1:]: v for k, v in states.items()},
            ),
        )
    except ConditionFailed:
        return None

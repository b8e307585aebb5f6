"""One attempt of an EventBridge destination: the delivery's payload put on the webhook's event bus.

The attempt is recorded like an https one (``services.webhook_delivery``): no HTTP status, the
error EventBridge gave, EventBridge's event id as the response. Every failure is retried on the
webhook schedule (a bus policy or a throttle can be fixed in time) except a bus that does not
exist, which ends the delivery and disables the webhook as an https endpoint's 410 does; so does a
bus in an account the operator has since taken off ``EventBridgeDestinationAccounts``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mailroom import clock
from mailroom.domain import event_buses
from mailroom.store import event_buses as buses
from mailroom.store.errors import ObjectMissing, StoreError
from mailroom.store.table import Item

ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class PutResult:
    succeeded: bool
    gone: bool
    duration_ms: int
    error: str | None
    response_excerpt: str | None
    status_code: None = None  # not HTTP
    retry_after: None = None


def put(delivery: Item, bus_arn: str, body: str, *, allowed_accounts: frozenset[str]) -> PutResult:
    """Put one delivery's payload on the bus; never raises for what EventBridge answered."""
    started = time.perf_counter()

    def result(*, error: str | None = None, gone: bool = False, response: str | None = None) -> PutResult:
        return PutResult(
            succeeded=error is None,
            gone=gone,
            duration_ms=round((time.perf_counter() - started) * 1000),
            error=error[:ERROR_CHARS] if error else None,
            response_excerpt=response,
        )

    try:
        bus = event_buses.check_allowed(event_buses.parse_arn(bus_arn), allowed_accounts)
    except ValueError as exc:
        return result(error=str(exc), gone=True)
    created_at = clock.parse_iso(delivery.get("event_created_at") or clock.now_iso())
    try:
        event_id = buses.put_event(bus, str(delivery["event_type"]), body, created_at=created_at)
    except ObjectMissing as exc:
        return result(error=f"{exc.code or 'ResourceNotFoundException'}: {exc.message}", gone=True)
    except StoreError as exc:
        return result(error=f"{exc.code}: {exc.message}" if exc.code else exc.message)
    return result(response=f"EventBridge event {event_id}")

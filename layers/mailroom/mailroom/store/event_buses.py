"""EventBridge destinations: one ``PutEvents`` call per delivery, to the bus of the webhook, in the
bus's own region.

A request that fails as a whole raises ``store.errors`` (as every AWS call here); an entry that
EventBridge refuses (throttling, an internal failure, a policy) comes back in the response instead,
and is raised as ``EntryRefused`` so callers handle both alike.
"""

from __future__ import annotations

from datetime import datetime

from mailroom.domain import event_buses as rules
from mailroom.store import aws
from mailroom.store.errors import StoreError


class EntryRefused(StoreError):
    """EventBridge took the request but not the event (its ``ErrorCode`` is ``code``)."""

    retryable = True


def put_event(bus: rules.EventBusArn, event_type: str, body: str, *, created_at: datetime) -> str:
    """Put one event on the bus; EventBridge's id for it."""
    response = aws.client("events", region=bus.region).put_events(
        Entries=[rules.entry(bus.arn, event_type, body, time=created_at)]
    )
    (result,) = response.get("Entries") or [{}]
    if int(response.get("FailedEntryCount", 0)) or "EventId" not in result:
        code = str(result.get("ErrorCode") or "Unknown")
        raise EntryRefused(
            f"{code}: {result.get('ErrorMessage') or 'the event was not accepted'}",
            code=code,
            service="events",
            operation="PutEvents",
        )
    return str(result["EventId"])

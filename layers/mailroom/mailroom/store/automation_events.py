"""Several events on one EventBridge bus per ``PutEvents`` call (a task's eventbridge action: up to
ten entries a call, EventBridge's limit). Entries EventBridge refused come back in the response, not
as an error: their count is returned so the caller records them as failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailroom.domain import event_buses as rules
from mailroom.store import aws


def put_entries(bus: rules.EventBusArn, entries: Sequence[dict[str, Any]]) -> list[str | None]:
    """One PutEvents call in the bus's region; per entry, its error code (None: accepted)."""
    response = aws.client("events", region=bus.region).put_events(Entries=list(entries))
    results = response.get("Entries") or []
    return [
        None if "EventId" in result else str(result.get("ErrorCode") or "Unknown") for result in results
    ] + ["Unknown"] * (len(entries) - len(results))

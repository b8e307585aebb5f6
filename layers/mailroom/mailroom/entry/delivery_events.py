"""SES sending events (deliveries, bounces, complaints...) through SNS: applied to the sent messages,
the suppression list and message.* events. A raised error makes Lambda retry the (asynchronous)
event and then hand it to the function's dead-letter queue; applying it again is harmless."""

from __future__ import annotations

from typing import Any

from mailroom.entry.runtime import lambda_entry


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services.delivery_events import handle
    from mailroom.store.table import Table

    outcomes = handle(Table(), event)
    return {
        "changed": sum(o.changed for o in outcomes),
        "duplicates": sum(o.duplicates for o in outcomes),
        "suppressed": sum(o.suppressed for o in outcomes),
        "ignored": [o.ignored for o in outcomes if o.ignored],
    }

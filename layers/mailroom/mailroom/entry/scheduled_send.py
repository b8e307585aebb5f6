"""The scheduled-send function: invoked by a one-off EventBridge Scheduler schedule with the input
``{"org_id", "mailbox_id", "scheduled_id"}`` it was created with (services/scheduled_sends.py)."""

from __future__ import annotations

from typing import Any

from mailroom.entry.runtime import lambda_entry
from mailroom.observability import append_keys, logger


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    from mailroom.services import scheduled_sends
    from mailroom.store.table import Table

    try:
        org_id, mailbox_id, scheduled_id = (str(event[k]) for k in ("org_id", "mailbox_id", "scheduled_id"))
    except (KeyError, TypeError):
        # Not a schedule of ours: retrying it would not make it one.
        logger().error("scheduled send event without its ids", extra={"event_keys": sorted(event or {})})
        return {"outcome": "invalid"}
    append_keys(org_id=org_id, mailbox_id=mailbox_id, scheduled_id=scheduled_id)
    outcome = scheduled_sends.fire(Table(), org_id, mailbox_id, scheduled_id)
    logger().info("scheduled send fired", extra={"outcome": outcome})
    return {"outcome": outcome}

"""Entry points for EventBridge-scheduled functions."""

from __future__ import annotations

from typing import Any

from mailroom.observability import logger


def dns_recheck(event: dict[str, Any]) -> dict[str, int]:
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

    from mailroom.services.domains import recheck_due
    from mailroom.store.table import Table

    scheduled = EventBridgeEvent(event)
    counts = recheck_due(Table())
    logger().info("dns recheck", extra={"scheduled_at": scheduled.time, **counts})
    return counts


def mailbox_sweep(event: dict[str, Any]) -> dict[str, int]:
    """Release expired invites' reservations and re-send purge jobs that stalled."""
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

    from mailroom.services import deletion, invites
    from mailroom.store.table import Table

    scheduled = EventBridgeEvent(event)
    table = Table()
    expired = invites.expire_due(table)
    resent = deletion.resend_stale(table)
    counts = {
        "invites_expired": expired["expired"],
        "purges_resent": resent["resent"],
        "errors": expired["errors"] + resent["errors"],
    }
    logger().info("mailbox sweep", extra={"scheduled_at": scheduled.time, **counts})
    return counts

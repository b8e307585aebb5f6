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

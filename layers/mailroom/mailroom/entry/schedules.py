"""EventBridge schedules: the DNS recheck, the mailbox sweep and the bulk migration sweep."""

from __future__ import annotations

from typing import Any

from mailroom.entry.runtime import lambda_entry
from mailroom.observability import logger


def _scheduled_at(event: dict[str, Any]) -> str:
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

    return EventBridgeEvent(event).time


@lambda_entry
def dns_recheck(event: dict[str, Any], context: Any) -> dict[str, int]:
    from mailroom.services.domains import recheck_due
    from mailroom.store.table import Table

    counts = recheck_due(Table())
    logger().info("dns recheck", extra={"scheduled_at": _scheduled_at(event), **counts})
    return counts


@lambda_entry
def mailbox_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Release expired invites' reservations and re-send purge jobs that stalled."""
    from mailroom.services import deletion, invites
    from mailroom.store.table import Table

    table = Table()
    expired = invites.expire_due(table)
    resent = deletion.resend_stale(table)
    counts = {
        "invites_expired": expired["expired"],
        "purges_resent": resent["resent"],
        "errors": expired["errors"] + resent["errors"],
    }
    logger().info("mailbox sweep", extra={"scheduled_at": _scheduled_at(event), **counts})
    return counts


@lambda_entry
def migration_batch_sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Start the next jobs of running bulk migrations whose ticks were missed."""
    from mailroom.services.bulk_scheduler import sweep
    from mailroom.store.table import Table

    counts = sweep(Table())
    logger().info("bulk migration sweep", extra={"scheduled_at": _scheduled_at(event), **counts})
    return counts


@lambda_entry
def billing_close(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Close the month before the scheduled time: every organization's invoice (docs/billing.md).

    The schedule passes its scheduled time (``{"time": "<aws.scheduler.scheduled-time>"}``), so a
    retried or late run closes the same month; ``{"month": "2026-11"}`` closes a named one (an
    operator's rerun). Writing an invoice twice writes nothing (it exists)."""
    from mailroom import clock
    from mailroom.domain.billing import month_start
    from mailroom.services import billing
    from mailroom.store.table import Table

    month = event.get("month")
    if isinstance(month, str):
        try:
            month_start(month)
        except ValueError as exc:
            raise ValueError(f"month must be YYYY-MM, got {month!r}") from exc
    else:
        raw_time = event.get("time")
        scheduled_at = clock.parse_iso(raw_time) if isinstance(raw_time, str) else clock.utcnow()
        month = billing.month_to_close(scheduled_at)
    closed = billing.close_month(Table(), month)
    counts = closed.counts()
    logger().info("billing month closed", extra={"month": month, **counts})
    return counts

"""DynamoDB stream of the table (new event items) → one delivery and queue message per subscribed webhook."""

from typing import Any

from mailroom.webhook_workers import event_fanout


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return event_fanout(event, context)

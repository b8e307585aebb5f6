"""SES delivery events (EventBridge rule on the configuration set's events) → delivery status,
suppression list and message.* events."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services.delivery_events import lambda_handler

    return lambda_handler(event, context)

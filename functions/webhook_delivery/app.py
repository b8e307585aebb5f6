"""SQS (WebhookQueue) → signed POSTs to webhook endpoints, retried on the Standard Webhooks schedule."""

from typing import Any

from mailroom.webhook_workers import webhook_delivery


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return webhook_delivery(event, context)

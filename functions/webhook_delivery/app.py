"""SQS (WebhookQueue) → signed POSTs to webhook endpoints, retried on the Standard Webhooks schedule."""

from mailroom.entry.queues import webhook_delivery as handler

__all__ = ["handler"]

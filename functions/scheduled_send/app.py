"""A one-off EventBridge Scheduler schedule → send the scheduled message once, if still pending."""

from mailroom.entry.scheduled_send import handler

__all__ = ["handler"]

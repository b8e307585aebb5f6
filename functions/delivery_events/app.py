"""SES delivery events (EventBridge rule on the configuration set's events) → delivery status,
suppression list and message.* events."""

from mailroom.entry.delivery_events import handler

__all__ = ["handler"]

"""DynamoDB stream of the table (new event items) → one delivery and queue message per subscribed webhook."""

from mailroom.entry.streams import event_fanout as handler

__all__ = ["handler"]

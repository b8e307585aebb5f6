"""DynamoDB stream of the table (new processing-log entries with pending actions) → one message per
asynchronous action on the automation actions queue."""

from mailroom.entry.automation import dispatch as handler

__all__ = ["handler"]

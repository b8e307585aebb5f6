"""SQS (AutomationActionsQueue) → webhook, eventbridge, forward and reply actions, run once each."""

from mailroom.entry.automation import worker as handler

__all__ = ["handler"]

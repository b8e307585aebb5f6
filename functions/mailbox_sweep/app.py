"""EventBridge schedule → release expired invites, re-send stalled purge jobs."""

from mailroom.entry.schedules import mailbox_sweep as handler

__all__ = ["handler"]

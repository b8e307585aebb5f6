"""EventBridge schedule → recheck the DNS of every domain that is due."""

from mailroom.entry.schedules import dns_recheck as handler

__all__ = ["handler"]

"""EventBridge schedule (the first of the month) → close the previous month's invoices."""

from mailroom.entry.schedules import billing_close as handler

__all__ = ["handler"]

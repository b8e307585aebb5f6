"""SQS (SmtpTestQueue) → run SMTP relay tests."""

from mailroom.entry.queues import smtp_relay_test as handler

__all__ = ["handler"]

"""SQS (VerifyBulkQueue) → verify bulk jobs' chunks."""

from mailroom.entry.queues import verify_bulk as handler

__all__ = ["handler"]

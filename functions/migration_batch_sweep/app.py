"""EventBridge schedule → tick bulk migration batches waiting on capacity; finish deleted ones' cleanup."""

from mailroom.entry.schedules import migration_batch_sweep as handler

__all__ = ["handler"]

"""EventBridge schedule → tick bulk migration batches waiting on capacity; finish deleted ones' cleanup."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    from mailroom.services.bulk_migrations import scheduled_sweep

    return scheduled_sweep(event)

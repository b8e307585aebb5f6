"""Step Functions (the migration state machine) → run the migration step named in the event."""

from typing import Any

from mailroom.migration_worker import migration_step


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return migration_step(event, context)

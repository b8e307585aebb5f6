"""Step Functions (the migration state machine) → run the migration step named in the event."""

from mailroom.entry.steps import migration_step as handler

__all__ = ["handler"]

"""The migration state machine's Lambda tasks: one function, the step named in the event
(``{"step": "plan", "state": {...}}``; see services/migration_steps.py)."""

from __future__ import annotations

from typing import Any

from mailroom.entry.runtime import lambda_entry, remaining_ms
from mailroom.observability import append_keys


@lambda_entry
def migration_step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services import migration_steps

    step = str(event.get("step") or "")
    run = migration_steps.STEPS.get(step)
    if run is None:
        raise ValueError(f"unknown migration step {step!r}; known: {', '.join(migration_steps.STEPS)}")
    state = event.get("state") or {}
    append_keys(migration_id=state.get("job_id"), step=step)
    return run(event, lambda: remaining_ms(context))

"""Entry point of the migration state machine's Lambda tasks: one function, the step named in the
event (``{"step": "plan", "state": {...}}``; see services/migration_steps.py)."""

from __future__ import annotations

from typing import Any

from mailroom.observability import logger


def _remaining_ms(context: Any) -> int:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    # Without a Lambda context (a direct call) there is no deadline to respect.
    return int(remaining()) if callable(remaining) else 10**9


def migration_step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services import migration_steps

    step = str(event.get("step") or "")
    run = migration_steps.STEPS.get(step)
    if run is None:
        raise ValueError(f"unknown migration step {step!r}; known: {', '.join(migration_steps.STEPS)}")
    state = event.get("state") or {}
    logger().append_keys(migration_id=state.get("job_id"), step=step)
    try:
        return run(event, lambda: _remaining_ms(context))
    finally:
        logger().remove_keys(["migration_id", "step"])

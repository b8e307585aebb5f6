"""The migration state machine's Lambda tasks: one function, the step named in the event
(``{"step": "plan", "state": {...}}``; see services/migration_steps.py).

Step Functions matches a task's error by the name of the exception the function raised. An AWS
failure worth retrying reaches it as ``StoreUnavailable``, the one name statemachines/
migration.asl.json retries, whatever the store error's own type (throttling, a 5xx, contention).
"""

from __future__ import annotations

from typing import Any

from mailroom.entry.runtime import lambda_entry, remaining_ms
from mailroom.observability import append_keys
from mailroom.store.errors import StoreError


class StoreUnavailable(Exception):
    """A retryable AWS failure, under the name the state machine's Retry lists."""


@lambda_entry
def migration_step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from mailroom.services import migration_steps

    step = str(event.get("step") or "")
    run = migration_steps.STEPS.get(step)
    if run is None:
        raise ValueError(f"unknown migration step {step!r}; known: {', '.join(migration_steps.STEPS)}")
    state = event.get("state") or {}
    append_keys(migration_id=state.get("job_id"), step=step)
    try:
        return run(event, lambda: remaining_ms(context))
    except StoreError as exc:
        if not exc.retryable:
            raise
        raise StoreUnavailable(f"{exc.service} {exc.operation}: {exc.code or type(exc).__name__}") from exc

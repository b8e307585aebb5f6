"""The decorator stack every Lambda entry point shares, and the invocation's remaining time.

``lambda_entry(handler)``: at the start of each invocation every log key of an earlier one is
forgotten and this one's are set (function, request id, cold start: what Powertools'
``inject_lambda_context(clear_state=True)`` does, with the keys kept per invocation, see
``observability``); the handler runs inside Powertools Tracer's ``capture_lambda_handler`` (where
tracing is on: see ``observability.tracing``); the metrics it recorded are flushed and its keys
dropped at the end, whether it returned or raised. So no key outlives its invocation, and on the
local stack, where every function shares one process and invocations run side by side, none reaches
another's lines.

A cold start is the first invocation of the handler, not of the process: on Lambda the two are the
same (a process serves one function), on the local stack each function has its own. With SnapStart
the first invocation of an environment resumed from the snapshot is its cold start too: init, and
so the snapshot, never invokes the handler.

Every handler module imports this one, so importing it registers the SnapStart runtime hooks
(``entry/snapstart``): Lambda only runs hooks registered by the time init ends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from mailroom import observability
from mailroom.entry import snapstart

R = TypeVar("R")
Handler = Callable[[Any, Any], R]

NO_DEADLINE_MS = 10**9

snapstart.register()


def remaining_ms(context: Any) -> int:
    """Milliseconds before Lambda stops the invocation (no context, as in a direct call: no limit)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else NO_DEADLINE_MS


def _context_keys(context: Any, *, cold_start: bool) -> dict[str, Any]:
    return {
        "cold_start": cold_start,
        "function_name": getattr(context, "function_name", None),
        "function_memory_size": getattr(context, "memory_limit_in_mb", None),
        "function_arn": getattr(context, "invoked_function_arn", None),
        "function_request_id": getattr(context, "aws_request_id", None),
    }


def lambda_entry(handler: Handler[R]) -> Handler[R]:
    """Wrap a Lambda handler in the shared stack (see the module docstring)."""
    traced: Handler[R] | None = None

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> R:
        nonlocal traced
        cold = traced is None
        if traced is None:
            # Built on the first event, not at import: the tracer reads the environment.
            traced = (
                observability.tracer().capture_lambda_handler(handler) if observability.tracing() else handler
            )
        observability.start_invocation(**_context_keys(context, cold_start=cold))
        try:
            return traced(event, context)
        finally:
            observability.flush_metrics()
            observability.end_invocation()

    return entry

"""Powertools Logger, Metrics and Tracer, built on first use (they read the environment when created).

Log keys that describe an invocation (the function, its request id, the correlation id, the
migration or message being worked on) are kept per invocation with Powertools' thread-safe keys
(a context variable), never with ``append_keys``: on Lambda one invocation runs at a time and
``entry.runtime`` clears them at its start and end, and in the local stack, where every function
shares one process and invocations run side by side on threads, each keeps its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

F = TypeVar("F", bound=Callable[..., Any])


@lru_cache(maxsize=1)
def logger() -> Logger:
    from aws_lambda_powertools import Logger

    return Logger()


METRICS_NAMESPACE = "Mailroom"  # template.yaml's POWERTOOLS_METRICS_NAMESPACE


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    """Powertools refuses to serialize metrics without a namespace: the environment's, else
    Mailroom's own, so no environment (a bench, a script) can make a flush raise."""
    import os

    from aws_lambda_powertools import Metrics

    return Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or METRICS_NAMESPACE)


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer()


@lru_cache(maxsize=1)
def tracing() -> bool:
    """Whether invocations are traced: in Lambda, unless POWERTOOLS_TRACE_DISABLED says otherwise
    (Powertools' own rule). Asked before the Tracer is built: the X-Ray SDK it imports costs about a
    fifth of a cold start, which a function that is not traced should not pay."""
    import os

    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")
    return not disabled and bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def set_correlation_id(value: str | None) -> None:
    logger().thread_safe_append_keys(correlation_id=value)


def append_keys(**keys: Any) -> None:
    """Keys on every later log line of this invocation (only)."""
    logger().thread_safe_append_keys(**keys)


@contextmanager
def log_keys(**keys: Any) -> Iterator[None]:
    """Keys on the log lines written inside the block."""
    logger().thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        logger().thread_safe_remove_keys(keys)


def start_invocation(**keys: Any) -> None:
    """Forget every key of an earlier invocation; start this one's with ``keys``."""
    log = logger()
    # What clear_state=True also resets: keys appended with Powertools' plain (process-wide)
    # append_keys, which nothing here uses, but a library might.
    log.registered_formatter.clear_state()
    log.thread_safe_clear_keys()
    log.thread_safe_append_keys(**keys)


def end_invocation() -> None:
    logger().thread_safe_clear_keys()


def flush_metrics() -> None:
    """Publish what the invocation recorded (EMF on stdout)."""
    recorded = metrics()
    # Flush only what was recorded: an empty flush warns on every invocation.
    if recorded.metric_set:
        recorded.flush_metrics()
        # With metrics disabled (local stack, tests) a flush keeps them: they would pile up until
        # Powertools serializes 100 of them on its own, and fail without a namespace.
        recorded.clear_metrics()


def traced(function: F) -> F:
    """Trace a use case as a subsegment of its invocation (Powertools' ``capture_method``), with the
    tracer made on the first call rather than at import."""
    wrapped: Callable[..., Any] | None = None

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal wrapped
        if wrapped is None:
            wrapped = tracer().capture_method(function) if tracing() else function
        return wrapped(*args, **kwargs)

    return call  # type: ignore[return-value]

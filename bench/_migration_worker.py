"""One migration worker "Lambda sandbox" for ``bench/migration.py``: a process that runs steps of the
migration state machine through the worker function's ``handler``, and says where their time went.

The bench starts a pool of these (as many as the Map's MaxConcurrency: on AWS each batch runs in a
Lambda sandbox of its own, with its own interpreter, boto3 clients and event loop). Inside, time is
attributed without changing the code under test: botocore ``before-call``/``after-call`` hooks on
Mailroom's own clients (every AWS call, by service and operation) and wrappers around a few of its
functions (the IMAP session's calls, the MIME parser, storing one message). Each region counts its
own time only (a region inside another is taken out of the outer one), per thread, so the numbers
add up to the threads' busy time; threads run at once, so the sum exceeds the wall time.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
INVOCATION_SECONDS = 900.0  # the worker function's Timeout in template.yaml


@dataclass
class Attribution:
    """Exclusive time and calls per region name, summed over threads."""

    seconds: Counter[str] = field(default_factory=Counter)  # float values
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def _stack(self) -> list[list[Any]]:
        stack: list[list[Any]] | None = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        return stack

    def enter(self, name: str) -> None:
        self._stack().append([name, time.perf_counter(), 0.0])

    def leave(self) -> None:
        stack = self._stack()
        if not stack:
            return
        name, started, inner = stack.pop()
        elapsed = time.perf_counter() - started
        if stack:
            stack[-1][2] += elapsed
        with self.lock:
            self.seconds[name] += elapsed - inner
            self.calls[name] += 1

    @contextmanager
    def region(self, name: str) -> Iterator[None]:
        self.enter(name)
        try:
            yield
        finally:
            self.leave()

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        with self.lock:
            taken = {k: float(v) for k, v in self.seconds.items()}, dict(self.calls)
            self.seconds, self.calls = Counter(), Counter()
        return taken


ATTRIBUTION = Attribution()


def _timed(name: str, function: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with ATTRIBUTION.region(name):
            return function(*args, **kwargs)

    return wrapper


def _timed_async(name: str, function: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    # One batch is one coroutine on its thread's loop, so a region opened here is not interleaved
    # with another region of the same thread.
    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        ATTRIBUTION.enter(name)
        try:
            return await function(*args, **kwargs)
        finally:
            ATTRIBUTION.leave()

    return wrapper


def _before_call(event_name: str, **kwargs: Any) -> None:
    _hook, service, operation = event_name.split(".", 2)
    ATTRIBUTION.enter(f"aws {service} {operation}")


def _after_call(**kwargs: Any) -> None:
    ATTRIBUTION.leave()


def initialize() -> None:
    """Runs once in each worker process: the handler imported, clients made, hooks installed."""
    from mailroom.imap.source import SourceSession
    from mailroom.services import mail_delivery, migration_chunks, migration_messages
    from mailroom.store import aws
    from tests.support.lambda_api import function_module

    function_module("migration_worker")
    for service in ("dynamodb", "s3", "kms", "stepfunctions"):
        events = aws.client(service).meta.events
        events.register("before-call.*.*", _before_call)
        events.register("after-call.*.*", _after_call)
        events.register("after-call-error.*.*", _after_call)
    session: Any = SourceSession
    session.open = classmethod(_timed_async("imap connect+login", SourceSession.open.__func__))  # type: ignore[attr-defined]
    session.folders = _timed_async("imap LIST+STATUS", SourceSession.folders)
    session.select = _timed_async("imap EXAMINE", SourceSession.select)
    session.uids = _timed_async("imap UID SEARCH", SourceSession.uids)
    session._fetch_chunk = _timed_async("imap UID FETCH (read+parse response)", SourceSession._fetch_chunk)
    session.close = _timed_async("imap LOGOUT", SourceSession.close)
    chunks: Any = migration_chunks
    chunks.parse = _timed("parse MIME (mail.parse)", chunks.parse)
    chunk_store: Any = migration_chunks.ChunkStore
    chunk_store.store = _timed("store one chunk: Mailroom's own code", chunk_store.store)
    importer: Any = migration_messages.Importer
    importer.known = _timed("duplicate check (GSI1): Mailroom's own code", importer.known)
    delivery: Any = mail_delivery
    delivery.deliver = _timed("deliver: Mailroom's own code", mail_delivery.deliver)


def warm(seconds: float) -> int:
    """A no-op that holds its worker a moment (so each worker of the pool gets one): its pid."""
    import os

    time.sleep(seconds)
    return os.getpid()


def run_step(event: dict[str, Any]) -> dict[str, Any]:
    """One invocation of the worker function with this event, as Step Functions would make it.

    Returns the handler's result or the error's type name and message (re-raised by the driver,
    which retries as the state machine's Retry says), with the invocation's time: wall, this
    process's CPU, and the attribution."""
    from tests.support.lambda_api import LambdaContext, function_module

    handler = function_module("migration_worker").handler
    context = LambdaContext(function_name="migration_worker", deadline=time.time() + INVOCATION_SECONDS)
    ATTRIBUTION.take()
    cpu, started = time.process_time(), time.perf_counter()
    outcome: dict[str, Any]
    with ATTRIBUTION.region(f"step {event.get('step')}: Mailroom's own code / waiting on its threads"):
        try:
            outcome = {"result": handler(json.loads(json.dumps(event)), context)}
        except Exception as exc:
            outcome = {"error": type(exc).__name__, "message": str(exc)}
    seconds, calls = ATTRIBUTION.take()
    return {
        **outcome,
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "seconds": seconds,
        "calls": calls,
    }

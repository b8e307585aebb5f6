"""Run the template's Lambda handlers in this process, the way the Lambda service would call them.

Each function's module is imported on its first invocation (a cold start) from its own file under a
unique module name, since every function's entry point is called ``app.py``. Invocations run on a
thread pool; each worker thread has its own asyncio event loop because Mangum (and anything async
inside a handler) calls ``asyncio.get_event_loop()``. Events and results go through JSON like on
Lambda, so a handler cannot share objects with its caller and an unserializable result fails the
same way it would when deployed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.stack import FunctionSpec

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


class FunctionError(Exception):
    """An invocation failed: what Lambda reports as ``FunctionError: Unhandled`` with this payload."""

    def __init__(
        self,
        function: str,
        error_type: str,
        message: str,
        stack_trace: list[str] | None = None,
        *,
        request_id: str = "",
    ) -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.function = function
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []
        self.request_id = request_id  # the failed invocation's, when it started

    def payload(self) -> dict[str, Any]:
        """The invoke response body Lambda returns for an unhandled error."""
        return {"errorMessage": self.message, "errorType": self.error_type, "stackTrace": self.stack_trace}


class FunctionTimeout(FunctionError):
    """The handler ran past the function's ``Timeout`` (Lambda would have stopped it)."""

    def __init__(self, function: str, timeout: float, *, request_id: str = "") -> None:
        super().__init__(
            function,
            "Sandbox.Timedout",
            f"Task timed out after {timeout:.2f} seconds",
            request_id=request_id,
        )


@dataclass(slots=True)
class LambdaContext:
    """The ``context`` argument, with the attributes the Python runtime's context object has."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float  # time.monotonic() at which the function times out
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: Any = None
    client_context: Any = None
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self._clock()) * 1000))


def new_invocation_id() -> str:
    """Shaped like Lambda's ``aws_request_id``."""
    return str(uuid.uuid4())


def _new_worker_loop(loops: list[asyncio.AbstractEventLoop], lock: threading.Lock) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with lock:
        loops.append(loop)


class FunctionRuntime:
    """Invokes functions by logical id, physical name or ARN."""

    def __init__(self, functions: Mapping[str, FunctionSpec], *, concurrency: int = 64) -> None:
        self._functions = dict(functions)
        self._handlers: dict[str, Handler] = {}
        self._import_locks = {logical_id: threading.Lock() for logical_id in self._functions}
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix="lambda",
            initializer=_new_worker_loop,
            initargs=(self._loops, self._loops_lock),
        )
        self._in_flight: set[concurrent.futures.Future[Any]] = set()
        self._in_flight_lock = threading.Lock()
        self.invocations: Counter[str] = Counter()
        for spec in self._functions.values():
            for layer in spec.layer_dirs:
                if str(layer) not in sys.path:
                    sys.path.insert(0, str(layer))

    @property
    def functions(self) -> dict[str, FunctionSpec]:
        return dict(self._functions)

    def spec(self, ref: str) -> FunctionSpec:
        """Find a function by logical id, name, or ARN (a version/alias qualifier is ignored)."""
        if ref in self._functions:
            return self._functions[ref]
        for spec in self._functions.values():
            if ref in (spec.name, spec.arn) or ref.startswith(spec.arn + ":"):
                return spec
        raise KeyError(f"no function {ref!r} in the template")

    def is_loaded(self, ref: str) -> bool:
        return self.spec(ref).logical_id in self._handlers

    def submit(
        self, ref: str, event: Any, *, request_id: str | None = None
    ) -> concurrent.futures.Future[Any]:
        """Start an invocation; the future holds the JSON result or raises :class:`FunctionError`.

        ``request_id`` is the invocation's ``aws_request_id`` (a new one if not given): the caller
        can then name the invocation in its own log, as API Gateway's ``$context.integration.requestId``.
        """
        spec = self.spec(ref)
        payload = json.dumps(event)  # the caller's event as it is now, like a request body
        future = self._pool.submit(self._run, spec, payload, request_id or new_invocation_id())
        with self._in_flight_lock:
            self._in_flight.add(future)
        future.add_done_callback(self._forget)
        return future

    def invoke(self, ref: str, event: Any, *, request_id: str | None = None) -> Any:
        """Invoke and wait (``RequestResponse``); a failure raises :class:`FunctionError`."""
        spec = self.spec(ref)
        request_id = request_id or new_invocation_id()
        future = self.submit(ref, event, request_id=request_id)
        try:
            # A little grace: the worker reports its own timeout, which carries the real duration.
            return future.result(timeout=spec.timeout + 1)
        except concurrent.futures.TimeoutError:
            log.error(
                "%s: invocation %s still running after its %ss timeout; its result will be discarded",
                spec.logical_id,
                request_id,
                spec.timeout,
            )
            raise FunctionTimeout(spec.logical_id, spec.timeout, request_id=request_id) from None

    async def invoke_async(
        self, ref: str, event: Any, *, wait_at_most: float | None = None, request_id: str | None = None
    ) -> Any:
        """``invoke`` for asyncio callers. ``wait_at_most`` caps the wait below the function timeout."""
        spec = self.spec(ref)
        limit = spec.timeout + 1 if wait_at_most is None else min(wait_at_most, spec.timeout + 1)
        request_id = request_id or new_invocation_id()
        future = asyncio.wrap_future(self.submit(ref, event, request_id=request_id))
        try:
            return await asyncio.wait_for(future, timeout=limit)
        except TimeoutError:
            raise FunctionTimeout(spec.logical_id, limit, request_id=request_id) from None

    def shutdown(self, wait_seconds: float) -> bool:
        """Stop taking invocations and wait for running ones. False if some are still running."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._in_flight_lock:
            pending = set(self._in_flight)
        _, still_running = concurrent.futures.wait(pending, timeout=wait_seconds)
        if still_running:
            log.warning("%d invocation(s) still running at shutdown", len(still_running))
            return False
        self._pool.shutdown(wait=True)
        with self._loops_lock:
            for loop in self._loops:
                loop.close()
            self._loops.clear()
        return True

    # ----------------------------------------------------------------------------- internals

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(future)

    def _handler(self, spec: FunctionSpec, request_id: str) -> Handler:
        handler = self._handlers.get(spec.logical_id)
        if handler is not None:
            return handler
        with self._import_locks[spec.logical_id]:
            if spec.logical_id not in self._handlers:
                self._handlers[spec.logical_id] = self._import(spec, request_id)
            return self._handlers[spec.logical_id]

    @staticmethod
    def _import(spec: FunctionSpec, request_id: str) -> Handler:
        started = time.perf_counter()
        module_name = f"_mailroom_local_fn_{spec.logical_id}"
        try:
            module_spec = importlib.util.spec_from_file_location(module_name, spec.module_file)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {spec.module_file}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
            handler = getattr(module, spec.handler_name)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            # Like Lambda: the init error fails this invocation, and the next one tries again.
            raise FunctionError(
                spec.logical_id,
                "Runtime.ImportModuleError",
                f"Unable to import module '{spec.handler}': {exc}",
                traceback.format_exception(exc),
                request_id=request_id,
            ) from exc
        log.info("%s: cold start (%.0f ms)", spec.logical_id, (time.perf_counter() - started) * 1000)
        return handler  # type: ignore[no-any-return]

    def _run(self, spec: FunctionSpec, payload: str, request_id: str) -> Any:
        with self._in_flight_lock:
            self.invocations[spec.logical_id] += 1
        handler = self._handler(spec, request_id)
        started = time.monotonic()
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_size,
            aws_request_id=request_id,
            deadline=started + spec.timeout,
            log_group_name=f"/aws/lambda/{spec.name}",
        )
        try:
            result = handler(json.loads(payload), context)
        except Exception as exc:
            # What Lambda writes to the function's log for an unhandled error, named by the function
            # and the invocation's own request id (the id its log lines carry as function_request_id).
            log.error(
                "%s: invocation %s failed: %s",
                spec.logical_id,
                request_id,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
            raise FunctionError(
                spec.logical_id,
                type(exc).__name__,
                str(exc),
                [line.rstrip() for line in traceback.format_tb(exc.__traceback__)],
                request_id=request_id,
            ) from exc
        elapsed = time.monotonic() - started
        if elapsed > spec.timeout:
            log.error(
                "%s: invocation %s took %.1fs, over its %ss timeout",
                spec.logical_id,
                request_id,
                elapsed,
                spec.timeout,
            )
            raise FunctionTimeout(spec.logical_id, spec.timeout, request_id=request_id)
        log.debug("%s: invocation %s took %.0f ms", spec.logical_id, request_id, elapsed * 1000)
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise FunctionError(
                spec.logical_id,
                "Runtime.MarshalError",
                f"Unable to marshal response: {exc}",
                request_id=request_id,
            ) from exc

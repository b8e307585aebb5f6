"""Lambda's asynchronous invocation (``InvocationType: Event``), with its retries and destination.

SES receipt rules, EventBridge rules and schedules invoke functions asynchronously, and Lambda
owns what happens when the function fails: it runs the event again, ``MaximumRetryAttempts`` times
(the function's ``EventInvokeConfig``; default 2), waiting between attempts, then hands it to the
``OnFailure`` destination (here: an SQS queue of the template) as Lambda's destination record,
or drops it (logged). Lambda waits about one minute, then two; locally the waits are ``delays``
seconds (1 and 2 by default), so a retried message arrives while a person or a test is still
looking. ``MaximumEventAgeInSeconds`` is not emulated (the local waits are far shorter).

``AsyncInvoker`` has the runtime's interface (``submit``, ``invoke``, ``spec``): ``submit`` is the
asynchronous invocation, ``invoke`` the synchronous one, unchanged (the caller sees its error).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from local.runtime import FunctionError
from local.stack import FunctionSpec

log = logging.getLogger(__name__)

DEFAULT_DELAYS = (1.0, 2.0)


class Runtime(Protocol):
    def invoke(self, ref: str, event: Any) -> Any: ...

    def submit(self, ref: str, event: Any) -> concurrent.futures.Future[Any]: ...

    def spec(self, ref: str) -> FunctionSpec: ...


QueueUrlOf = Callable[[str], str | None]  # an SQS queue ARN -> its URL, None if not in the template


def destination_record(
    spec: FunctionSpec, event: Any, error: FunctionError, *, request_id: str, attempts: int
) -> dict[str, Any]:
    """What Lambda sends an ``OnFailure`` destination for an event whose retries ran out."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{spec.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error.payload(),
    }


class AsyncInvoker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        sqs: Any = None,
        queue_url_of: QueueUrlOf | None = None,
        delays: Sequence[float] = DEFAULT_DELAYS,
    ) -> None:
        self._runtime = runtime
        self._sqs = sqs
        self._queue_url_of = queue_url_of
        self._delays = tuple(delays) or DEFAULT_DELAYS
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._stopped = False
        self.retried = 0  # invocations run again after a failure
        self.given_up = 0  # events whose retries ran out

    def spec(self, ref: str) -> FunctionSpec:
        return self._runtime.spec(ref)

    def invoke(self, ref: str, event: Any) -> Any:
        return self._runtime.invoke(ref, event)

    def submit(self, ref: str, event: Any) -> concurrent.futures.Future[Any]:
        """Invoke asynchronously; the future holds the result of the attempt that succeeded, or the
        last attempt's :class:`FunctionError` once the retries ran out."""
        spec = self._runtime.spec(ref)
        outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
        # Lambda gives the event one request id for all its attempts.
        self._attempt(spec, json.loads(json.dumps(event)), outcome, str(uuid.uuid4()), 1)
        return outcome

    def stop(self) -> None:
        """Cancel the retries still waiting (their events are dropped, as when Lambda is deleted)."""
        with self._lock:
            self._stopped = True
            timers, self._timers = set(self._timers), set()
        for timer in timers:
            timer.cancel()
        if timers:
            log.warning(
                "%d asynchronous invocation retr%s dropped at shutdown",
                len(timers),
                "y" if len(timers) == 1 else "ies",
            )

    def _attempt(
        self, spec: FunctionSpec, event: Any, outcome: concurrent.futures.Future[Any], request_id: str, n: int
    ) -> None:
        try:
            running = self._runtime.submit(spec.logical_id, event)
        except Exception as exc:  # the runtime is shutting down
            outcome.set_exception(exc)
            return
        running.add_done_callback(lambda done: self._finished(spec, event, outcome, request_id, n, done))

    def _finished(
        self,
        spec: FunctionSpec,
        event: Any,
        outcome: concurrent.futures.Future[Any],
        request_id: str,
        n: int,
        done: concurrent.futures.Future[Any],
    ) -> None:
        error = done.exception()
        if error is None:
            outcome.set_result(done.result())
            return
        if not isinstance(error, FunctionError) or n > spec.async_retries:
            self._give_up(spec, event, error, request_id, n)
            outcome.set_exception(error)
            return
        delay = self._delays[min(n, len(self._delays)) - 1]
        log.info(
            "%s: asynchronous invocation %s failed (%s); retry %d of %d in %.0f s",
            spec.logical_id,
            request_id,
            error.error_type,
            n,
            spec.async_retries,
            delay,
        )

        def retry() -> None:
            with self._lock:
                self._timers.discard(timer)
                self.retried += 1
            self._attempt(spec, event, outcome, request_id, n + 1)

        timer = threading.Timer(delay, retry)
        timer.daemon = True
        with self._lock:
            if self._stopped:
                outcome.set_exception(error)
                return
            self._timers.add(timer)
        timer.start()

    def _give_up(
        self, spec: FunctionSpec, event: Any, error: BaseException, request_id: str, attempts: int
    ) -> None:
        with self._lock:
            self.given_up += 1
        arn = spec.async_on_failure_arn
        url = self._queue_url_of(arn) if arn and self._queue_url_of else None
        if not isinstance(error, FunctionError) or url is None or self._sqs is None:
            log.error(
                "%s: asynchronous invocation %s failed %d time(s); the event is dropped%s",
                spec.logical_id,
                request_id,
                attempts,
                f" ({arn} is not a queue of the template)" if arn else " (no OnFailure destination)",
            )
            return
        record = destination_record(spec, event, error, request_id=request_id, attempts=attempts)
        try:
            self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        except Exception:
            log.exception("%s: the failed event %s could not be sent to %s", spec.logical_id, request_id, arn)
            return
        log.error(
            "%s: asynchronous invocation %s failed %d time(s); the event went to %s",
            spec.logical_id,
            request_id,
            attempts,
            arn,
        )

"""Fault injection (``MAILROOM_FAULTS``): a share of the functions' AWS calls fail the way AWS fails.

``MAILROOM_FAULTS="dynamodb=0.1,s3=0.1,sesv2=0.1,sqs=0.1,persist=0.1,seed=7"`` makes each attempt
of an AWS call to those services fail with that probability. Names are boto3's service names
(``kms``, ``stepfunctions``, ... work too). An injected fault is, with equal chance, a server error
or throttling, shaped as the service sends it (DynamoDB: 500 ``InternalServerError`` / 400
``ThrottlingException``; S3: 500 ``InternalError`` / 503 ``SlowDown``; SES v2: 500
``InternalServiceErrorException`` / 429 ``TooManyRequestsException``; SQS: 500 ``InternalFailure``
/ 400 ``RequestThrottled``; others: ``InternalFailure`` / their protocol's throttling code).

Faults on single attempts are what AWS's transient errors look like, and botocore's retries absorb
nearly all of them: at 10% a call fails in the code only when all four of its attempts do. Outages
and throttling also come in episodes longer than the SDK's backoff: ``persist`` (default 0) is the
share of faulted calls whose fault lasts through every retry, so those reach the code. ``seed``
(default 0) fixes which attempts fail.

The fault is a real HTTP response handed to botocore before the request leaves the process (a
``before-send`` handler, as moto's own mock uses), so botocore parses it, its retry policy retries
it, and what reaches the code is exactly what AWS's answer would have produced: the code cannot
tell the difference, and nothing in ``layers/mailroom`` knows about it. Injected faults never
reach moto, so a faulted call has done nothing (like a throttled call; a real 500 may have).

Only the functions' clients are faulted: the handler goes into every botocore session the process
creates (``BUILTIN_HANDLERS``), and the local stack's own clients, which play AWS's internal part
(event source pollers, SES receiving, snapshots), take it out again (``exempt``).

Each (service, operation) draws from its own seeded stream, so a given sequence of calls meets the
same faults on every run. ``stats()`` counts attempts, faults by code, persisting faults, and
faults on a call's last attempt (the ones botocore gave up on, which the code saw).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from local import loopback
from local.config import ConfigError

log = logging.getLogger(__name__)

MAX_PERSISTING = 10_000
_ATTEMPT_RE = re.compile(r"attempt=(\d+)")
_MAX_RE = re.compile(r"max=(\d+)")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to fault: a rate per boto3 service name (per call attempt), the share of faulted calls
    whose fault persists through their retries, and the seed of the draws."""

    rates: dict[str, float]
    seed: int = 0
    persist: float = 0.0

    @classmethod
    def parse(cls, text: str) -> FaultPlan | None:
        """``"dynamodb=0.1,s3=0.05 persist=0.1 seed=7"`` (comma or space separated); None when no
        service is named."""
        rates: dict[str, float] = {}
        seed, persist = 0, 0.0
        for pair in filter(None, re.split(r"[\s,]+", text.strip())):
            name, sep, value = pair.partition("=")
            name = name.strip().lower()
            if not sep or not name or not value:
                raise ConfigError(
                    f"MAILROOM_FAULTS: expected service=rate, persist=P or seed=N, got {pair!r}"
                )
            if name == "seed":
                try:
                    seed = int(value)
                except ValueError as exc:
                    raise ConfigError(f"MAILROOM_FAULTS: seed must be an integer, got {value!r}") from exc
            elif name == "persist":
                persist = _share(name, value)
            else:
                rates[name] = _share(name, value)
        return cls(rates, seed, persist) if rates else None

    def describe(self) -> str:
        rates = ", ".join(f"{name} {rate:.0%}" for name, rate in sorted(self.rates.items()))
        return f"{rates} of call attempts; {self.persist:.0%} of faults persist; seed {self.seed}"


def _share(name: str, value: str) -> float:
    try:
        share = float(value)
    except ValueError as exc:
        raise ConfigError(f"MAILROOM_FAULTS: {name} must be a number, got {value!r}") from exc
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"MAILROOM_FAULTS: {name} must be between 0 and 1, got {share}")
    return share


@dataclass(frozen=True, slots=True)
class Fault:
    status: int
    code: str
    message: str


# (server error, throttling) per service, as each one sends them.
_SERVICE_FAULTS: dict[str, tuple[Fault, Fault]] = {
    "dynamodb": (
        Fault(500, "InternalServerError", "Internal server error"),
        Fault(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    ),
    "s3": (
        Fault(500, "InternalError", "We encountered an internal error. Please try again."),
        Fault(503, "SlowDown", "Please reduce your request rate."),
    ),
    "sesv2": (
        Fault(500, "InternalServiceErrorException", "Internal service error"),
        Fault(429, "TooManyRequestsException", "Maximum sending rate exceeded."),
    ),
    "sqs": (
        Fault(500, "InternalFailure", "The request processing has failed because of an unknown error."),
        Fault(400, "RequestThrottled", "Request is throttled."),
    ),
}
_PROTOCOL_FAULTS: dict[str, tuple[Fault, Fault]] = {
    "json": (
        Fault(500, "InternalFailure", "Internal failure"),
        Fault(400, "ThrottlingException", "Rate exceeded"),
    ),
    "rest-json": (
        Fault(500, "InternalFailure", "Internal failure"),
        Fault(400, "ThrottlingException", "Rate exceeded"),
    ),
    "query": (Fault(500, "InternalFailure", "Internal failure"), Fault(400, "Throttling", "Rate exceeded")),
    "ec2": (
        Fault(500, "InternalError", "Internal error"),
        Fault(503, "RequestLimitExceeded", "Request limit exceeded"),
    ),
    "rest-xml": (
        Fault(500, "InternalError", "Internal error"),
        Fault(503, "SlowDown", "Reduce your request rate"),
    ),
}


@dataclass(frozen=True, slots=True)
class _Target:
    name: str  # boto3's name (``stepfunctions``)
    protocol: str
    json_prefix: str  # the ``__type`` namespace of JSON protocol errors
    rate: float
    faults: tuple[Fault, Fault]


class _Body:
    """What ``AWSResponse`` reads a body from (a urllib3 response, for real requests)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_response(
    protocol: str, fault: Fault, *, json_prefix: str, request_id: str
) -> tuple[dict[str, str], bytes]:
    """Headers and body of ``fault`` as a service of ``protocol`` sends it."""
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = {"__type": f"{json_prefix}#{fault.code}", "message": fault.message}
        return headers, json.dumps(body).encode()
    if protocol == "rest-json":
        headers |= {"Content-Type": "application/json", "x-amzn-ErrorType": fault.code}
        return headers, json.dumps({"message": fault.message}).encode()
    code, message = _xml(fault.code), _xml(fault.message)
    headers["Content-Type"] = "text/xml"
    if protocol == "rest-xml":
        headers["x-amz-request-id"] = request_id
        text = (
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    elif protocol == "ec2":
        text = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:  # query
        kind = "Receiver" if fault.status >= 500 else "Sender"
        text = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return headers, ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name) or ""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Counts:
    attempts: Counter[str] = field(default_factory=Counter)  # per service
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)  # per (service, code)
    surfaced: Counter[str] = field(default_factory=Counter)  # faults on a call's last attempt
    persisted: Counter[str] = field(default_factory=Counter)  # calls whose fault outlasted their retries
    retried: Counter[str] = field(default_factory=Counter)  # attempts after the first, per service


class FaultInjector:
    """The ``before-send`` handler: a fault response for the attempts the plan picks, else None."""

    def __init__(self, plan: FaultPlan) -> None:
        import botocore.session
        from botocore.exceptions import UnknownServiceError

        self.plan = plan
        session = botocore.session.get_session()
        self._targets: dict[str, _Target] = {}  # by the service id of event names ("sfn")
        for name, rate in plan.rates.items():
            try:
                model = session.get_service_model(name)
            except UnknownServiceError as exc:
                raise ConfigError(f"MAILROOM_FAULTS: {name!r} is not an AWS service botocore knows") from exc
            protocol = str(model.resolved_protocol)
            faults = _SERVICE_FAULTS.get(name) or _PROTOCOL_FAULTS.get(protocol)
            if faults is None:
                raise ConfigError(f"MAILROOM_FAULTS: {name} speaks {protocol}, which cannot be faulted here")
            prefix = f"com.amazonaws.{model.endpoint_prefix}"
            self._targets[model.service_id.hyphenize()] = _Target(name, protocol, prefix, rate, faults)
        self._draws: dict[tuple[str, str], random.Random] = {}
        # Calls whose fault persists, by botocore's invocation id (the same on each retry).
        self._persisting: dict[str, Fault] = {}
        self._counts = _Counts()
        self._lock = threading.Lock()
        self._paused = 0
        self.active = True  # False once uninstalled: clients made meanwhile keep the handler

    def __call__(self, request: Any, event_name: str = "", **_kwargs: Any) -> Any:
        _, _, rest = event_name.partition(".")
        service_id, _, operation = rest.partition(".")
        target = self._targets.get(service_id)
        if target is None or self._paused or not self.active:
            return None
        retry = _header(request, "amz-sdk-request")
        attempt, most = _ATTEMPT_RE.search(retry), _MAX_RE.search(retry)
        last = attempt is not None and most is not None and attempt.group(1) == most.group(1)
        call = _header(request, "amz-sdk-invocation-id")
        with self._lock:
            draws = self._draws.get((target.name, operation))
            if draws is None:
                # Not for security: reproducible draws are the point.
                draws = self._draws[(target.name, operation)] = random.Random(  # noqa: S311
                    f"{self.plan.seed}:{target.name}:{operation}"
                )
            # Three draws per attempt whatever happens: an attempt's fate depends only on how many
            # attempts of its operation came before it.
            hit, kind, persists = draws.random() < target.rate, draws.random() < 0.5, draws.random()
            self._counts.attempts[target.name] += 1
            if attempt is not None and int(attempt.group(1)) > 1:
                self._counts.retried[target.name] += 1
            fault = self._persisting.pop(call, None) if call else None
            if fault is None:
                if not hit:
                    return None
                fault = target.faults[1 if kind else 0]
                if call and not last and persists < self.plan.persist:
                    self._counts.persisted[target.name] += 1
                    self._persist(call, fault)
            elif not last:
                self._persist(call, fault)
            self._counts.injected[(target.name, fault.code)] += 1
            if last:
                self._counts.surfaced[target.name] += 1
        log.debug("fault: %s %s -> %d %s (%s)", target.name, operation, fault.status, fault.code, retry)
        loopback.mark_answered(request)  # botocore still runs the other before-send handlers
        return self._response(request, target, fault)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No faults meanwhile, on any thread (the local stack's own setup through product code)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def _persist(self, call: str, fault: Fault) -> None:
        self._persisting[call] = fault
        while len(self._persisting) > MAX_PERSISTING:  # calls that were never retried
            del self._persisting[next(iter(self._persisting))]

    @staticmethod
    def _response(request: Any, target: _Target, fault: Fault) -> Any:
        from botocore.awsrequest import AWSResponse

        headers, body = error_response(
            target.protocol, fault, json_prefix=target.json_prefix, request_id=str(uuid.uuid4())
        )
        # Any mapping will do: AWSResponse wraps it (the stubs ask for HTTPHeaders).
        return AWSResponse(request.url, fault.status, headers, _Body(body))  # type: ignore[arg-type]

    def stats(self) -> dict[str, Any]:
        """Per service: attempts seen, how many were retries, faults injected (by code), calls
        whose fault persisted, and faults on a call's last attempt (botocore gave up: the code saw
        those)."""
        with self._lock:
            counts = self._counts
            return {
                target.name: {
                    "attempts": counts.attempts[target.name],
                    "retried_attempts": counts.retried[target.name],
                    "injected": {
                        code: n
                        for (service, code), n in sorted(counts.injected.items())
                        if service == target.name
                    },
                    "injected_total": sum(n for (s, _), n in counts.injected.items() if s == target.name),
                    "persisted": counts.persisted[target.name],
                    "surfaced": counts.surfaced[target.name],
                }
                for target in self._targets.values()
            }

    def summary(self) -> str:
        return "; ".join(
            f"{name}: {s['injected_total']} of {s['attempts']} attempts faulted, "
            f"{s['surfaced']} on a last attempt"
            for name, s in self.stats().items()
        )


_installed: list[FaultInjector] = []
_install_lock = threading.Lock()


def install(plan: FaultPlan) -> FaultInjector:
    """Fault every botocore session created from now on (see the module docstring)."""
    from botocore.handlers import BUILTIN_HANDLERS, REGISTER_FIRST

    injector = FaultInjector(plan)
    with _install_lock:
        # First: a fault comes before anything else would answer (moto's mock, in tests).
        BUILTIN_HANDLERS.append(("before-send", injector, REGISTER_FIRST))
        _installed.append(injector)
    log.warning("fault injection on: %s", plan.describe())
    return injector


def uninstall() -> None:
    """No more faults: in sessions created from now on, nor in clients made before."""
    from botocore.handlers import BUILTIN_HANDLERS

    with _install_lock:
        BUILTIN_HANDLERS[:] = [spec for spec in BUILTIN_HANDLERS if spec[1] not in _installed]
        for injector in _installed:
            injector.active = False
        _installed.clear()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No faults meanwhile: for the local stack's own setup that goes through Mailroom's code (the
    bootstrap's admin token and platform domain), which shares the functions' clients."""
    with _install_lock:
        injectors = list(_installed)
    with contextlib.ExitStack() as stack:
        for injector in injectors:
            stack.enter_context(injector.paused())
        yield


def exempt(client: Any) -> Any:
    """Take fault injection out of ``client`` (the local stack's own clients); returns it."""
    with _install_lock:
        injectors = list(_installed)
    for injector in injectors:
        client.meta.events.unregister("before-send", injector)
    return client

"""Route moto's Lambda ``Invoke`` to the in-process functions (Step Functions tasks go through it).

moto's Step Functions interpreter calls Lambda through the Lambda API; with ``use_docker: false``
that lands in ``LambdaSimpleBackend.invoke``, which would echo the payload. Replacing that one
method (and ``LambdaFunction.invoke``, used by the legacy InvokeAsync API) makes every Lambda
invocation through moto — Step Functions tasks, ``lambda.invoke`` from a handler, the CLI —
run the template's handler. An unhandled error comes back as ``FunctionError: Unhandled`` with
Lambda's error payload, so ``Retry``/``Catch`` on ``errorType`` work as on AWS. Functions that are
not in the template keep moto's behaviour.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from local.runtime import FunctionError

log = logging.getLogger(__name__)


class Runtime(Protocol):
    def invoke(self, ref: str, event: Any) -> Any: ...

    def submit(self, ref: str, event: Any) -> Any: ...

    def spec(self, ref: str) -> Any: ...


class _Hook:
    """The runtime moto's invocations go to, and the moto methods replaced to get there."""

    lock = threading.Lock()
    runtime: Runtime | None = None
    originals: dict[str, Any] = {}


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if str(key).lower() == name.lower():
                return str(value)
        return None
    value = headers.get(name)
    return None if value is None else str(value)


def _dispatch(function_name: str, body: Any, headers: Any, response_headers: dict[str, Any]) -> bytes | None:
    """The invoke response payload, or None when the function is not one of the template's."""
    runtime = _Hook.runtime
    if runtime is None:
        return None
    try:
        runtime.spec(function_name)
    except KeyError:
        return None
    if isinstance(body, bytes):
        body = body.decode()
    event = json.loads(body) if body else {}
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        runtime.submit(function_name, event)
        return b""
    try:
        result = runtime.invoke(function_name, event)
    except FunctionError as error:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(error.payload()).encode()
    return json.dumps(result).encode()


def _backend_invoke(
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, Any],
) -> Any:
    fn = self.get_function(function_name, qualifier)  # unknown names get moto's own 404
    payload = _dispatch(fn.function_name, body, headers, response_headers)
    if payload is None:
        return _Hook.originals["backend"](self, function_name, qualifier, body, headers, response_headers)
    response_headers["Content-Length"] = str(len(payload))
    return payload


def _function_invoke(self: Any, body: Any, request_headers: Any, response_headers: dict[str, Any]) -> Any:
    payload = _dispatch(self.function_name, body, request_headers, response_headers)
    if payload is None:
        return _Hook.originals["function"](self, body, request_headers, response_headers)
    return payload


def install(runtime: Runtime) -> None:
    """Send moto's Lambda invocations of template functions to ``runtime`` (one runtime at a time)."""
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _Hook.lock:
        if not _Hook.originals:
            _Hook.originals["backend"] = LambdaSimpleBackend.invoke
            _Hook.originals["function"] = LambdaFunction.invoke
            LambdaSimpleBackend.invoke = _backend_invoke  # type: ignore[method-assign]
            LambdaFunction.invoke = _function_invoke  # type: ignore[method-assign]
        _Hook.runtime = runtime


def uninstall() -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _Hook.lock:
        _Hook.runtime = None
        if _Hook.originals:
            LambdaSimpleBackend.invoke = _Hook.originals.pop("backend")  # type: ignore[method-assign]
            LambdaFunction.invoke = _Hook.originals.pop("function")  # type: ignore[method-assign]

"""Drive API functions the way API Gateway does: the routed function's ``handler`` with an HTTP API
v2 event built from ``events/http_api_request.json`` (no authorizer: the function authenticates the
``Authorization`` header itself, see ``mailroom.auth``).

Used by integration tests (in-process, under moto); the e2e tests use the real local gateway.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
_modules: dict[str, ModuleType] = {}


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def function_module(name: str) -> ModuleType:
    """``functions/<name>/app.py`` imported under a unique module name (each function is its own Lambda)."""
    if name not in _modules:
        path = ROOT / "functions" / name / "app.py"
        spec = importlib.util.spec_from_file_location(f"function_{name}_app", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name]


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline: float = field(default_factory=lambda: time.time() + 29)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        payload = self.json()
        return payload.get("error", {}).get("code") if isinstance(payload, dict) else None


def http_event(
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("http_api_request.json"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = urlencode(query or {}, doseq=True)
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    event["headers"] = {k.lower(): v for k, v in {**event["headers"], **(headers or {})}.items()}
    event["headers"].pop("authorization", None)  # the sample's, a placeholder
    if token is not None:
        event["headers"]["authorization"] = f"Bearer {token}"
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
        event["headers"]["content-length"] = str(len(body))
    return event


def call(
    function: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    public: bool = False,
) -> Result:
    """One API request to the function, like API Gateway (``public``: send no token even if given)."""
    body = None
    all_headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers.setdefault("content-type", "application/json")
    event = http_event(
        method, path, token=None if public else token, headers=all_headers, query=query, body=body
    )
    response = function_module(function).handler(event, LambdaContext(function_name=function))
    raw = response.get("body") or ""
    payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    result = Result(
        status=response["statusCode"],
        headers={k.lower(): v for k, v in response["headers"].items()},
        body=payload,
    )
    _check_conformance(method, path, result)
    return result


def _check_conformance(method: str, path: str, result: Result) -> None:
    """Every response must be what the OpenAPI document says (see ``openapi_conformance``);
    ``OPENAPI_CONFORMANCE=record:FILE`` appends the differences to FILE instead of failing."""
    import os

    from tests.support.openapi_conformance import problems

    found = problems(method, path, result.status, result.headers, result.body)
    if not found:
        return
    mode = os.environ.get("OPENAPI_CONFORMANCE", "fail")
    if mode.startswith("record:"):
        with open(mode.removeprefix("record:"), "a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in found)
        return
    raise AssertionError("response does not conform to the OpenAPI document:\n" + "\n".join(found))

"""Every API response an integration test sees is checked against the OpenAPI document.

``check(method, path, status, headers, body)`` fails the test when the operation does not document
the status, when the body does not validate against the documented schema, or when a documented
required header is missing. So the whole integration suite keeps the document honest: a field
renamed, a status added or an envelope changed without the document shows at once, where client
generators and the MCP server would otherwise break later.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]


@functools.cache
def _document() -> dict[str, Any]:
    from mailroom.api.openapi import document

    # Through JSON, as a client reads it (no Python objects left in defaults).
    return json.loads(json.dumps(document()))  # type: ignore[no-any-return]


@functools.cache
def _operations() -> list[Operation]:
    operations = []
    for template, item in _document()["paths"].items():
        escaped = re.escape(template)
        for method, spec in item.items():
            for segment in ("[^/]+", ".+"):  # a parameter is one segment, or a path (folder keys)
                regex = "^" + re.sub(r"\\{[^}]+\\}", segment, escaped) + "$"
                operations.append(Operation(method.upper(), template, re.compile(regex), spec))
    # A literal segment wins over a parameter (/mailboxes/invites before /mailboxes/{id}), and a
    # one-segment match over a multi-segment one.
    operations.sort(key=lambda o: (".+" in o.pattern.pattern, o.template.count("{")))
    return operations


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(_document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:mailroom:openapi", resource)
    return registry


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    rooted = json.loads(json.dumps(schema).replace('"#/components/', '"urn:mailroom:openapi#/components/'))
    return Draft202012Validator(rooted, registry=_registry())


def find(method: str, path: str) -> Operation | None:
    # The API takes one trailing slash as optional on every path (mailroom/api/paths.py); the
    # document names each path once, without it.
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for operation in _operations():
        if operation.method == method.upper() and operation.pattern.match(path):
            return operation
    return None


def problems(method: str, path: str, status: int, headers: dict[str, str], body: bytes) -> list[str]:
    """What in this response the document does not say (empty when it conforms)."""
    if path == "/api/openapi.json":
        return []  # the document itself
    operation = find(method, path)
    if operation is None:
        # Unknown routes answer 404/405 in the envelope; no operation documents them.
        return [] if status in (404, 405) else [f"{method} {path}: no such operation in the document"]
    responses = operation.spec.get("responses", {})
    response = responses.get(str(status)) or responses.get("default")
    where = f"{method} {operation.template} -> {status}"
    if response is None:
        return [f"{where}: status not documented (documented: {', '.join(sorted(responses))})"]
    found: list[str] = []
    lowered = {k.lower() for k in headers}
    components = _document().get("components", {}).get("headers", {})
    for name, declared in (response.get("headers") or {}).items():
        header = components.get(declared["$ref"].rsplit("/", 1)[-1], {}) if "$ref" in declared else declared
        if header.get("required") and name.lower() not in lowered:
            found.append(f"{where}: required header {name} missing")
    documented = response.get("content") or {}
    media_type = next(
        (v.split(";")[0].strip().lower() for k, v in headers.items() if k.lower() == "content-type"), ""
    )
    if media_type != "application/json" and media_type in documented:
        return found  # a documented alternative (CSV, vCard, ...): its bytes have no JSON schema
    content = documented.get("application/json")
    if content and body:
        try:
            payload = json.loads(body)
        except ValueError:
            return [*found, f"{where}: body is not JSON"]
        for error in _validator(content.get("schema", {})).iter_errors(payload):
            found.append(f"{where}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}")
    return found

"""Cloudflare's published API schema, for checking what crosses the wire in tests: the requests the
real ``cloudflare`` SDK makes (paths, query parameters, bodies) and the answers of the local
Cloudflare API (tests/support/cloudflare_api.py).

The schema is the part of Cloudflare's OpenAPI document (github.com/cloudflare/api-schemas,
``openapi.json``) that Mailroom calls: the operations in ``OPERATIONS`` and every component they
reach, cut by ``cut`` into tests/fixtures/cloudflare/openapi-dns.json (the source commit is in its
``info``). To cut it again from a newer copy::

    python -m tests.support.cloudflare_schema path/to/openapi.json <commit>
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.support.cloudflare_api import PREFIX, Seen

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cloudflare" / "openapi-dns.json"
SOURCE = "urn:cloudflare:openapi"
OPERATIONS = (
    ("/user/tokens/verify", "get"),
    ("/zones", "get"),
    ("/zones/{zone_id}", "get"),
    ("/zones/{zone_id}/dns_records", "get"),
    ("/zones/{zone_id}/dns_records", "post"),
    ("/zones/{zone_id}/dns_records/{dns_record_id}", "patch"),
    ("/zones/{zone_id}/dns_records/{dns_record_id}", "delete"),
)
# Where this copy of the schema (August 2024, the newest whole copy at hand when it was cut) is
# known to be wrong or older than the API the SDK (5.x) speaks, it is read narrowly:
# - query parameters added since: the SDK filters records by ``name.exact`` (the copy documents
#   only ``name``, an exact match too);
LATER_PARAMETERS = {("/zones/{zone_id}/dns_records", "get"): {"name.exact": {"type": "string"}}}
# - a record's create and patch bodies are given the response's record schema, which requires
#   ``id``, ``proxiable``, ``created_on``...: a body is checked against its record type's schema
#   (the union's members: type, name, content, and priority for MX);
RECORD_SCHEMA = "#/components/schemas/dns-records_dns-record"
TYPE = deque(["type"])
# - a 4XX answer is given the success envelope and the failure one together (``allOf`` of
#   ``success: true`` and ``success: false``, which nothing satisfies): it is checked against the
#   failure envelope;
# - DELETE of a record declares a required body with no schema (the SDK sends none).


def cut(document: dict[str, Any], commit: str) -> dict[str, Any]:
    """The operations of ``OPERATIONS`` with every component they refer to, directly or not."""
    reached: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in reached:
                reached.add(ref)
                target: Any = document
                for part in ref.removeprefix("#/").split("/"):
                    target = target[part]
                visit(target)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    paths: dict[str, dict[str, Any]] = {}
    for path, method in OPERATIONS:
        item = document["paths"][path]
        paths.setdefault(path, {})[method] = item[method]
        if "parameters" in item:
            paths[path]["parameters"] = item["parameters"]
        visit(paths[path])
    components: dict[str, dict[str, Any]] = {}
    for ref in sorted(reached):
        _, _, kind, name = ref.split("/")
        components.setdefault(kind, {})[name] = document["components"][kind][name]
    return {
        "openapi": document["openapi"],
        "info": {
            "title": document["info"]["title"],
            "version": document["info"]["version"],
            "x-source": f"github.com/cloudflare/api-schemas/blob/{commit}/openapi.json",
        },
        "servers": document["servers"],
        "paths": paths,
        "components": components,
    }


@functools.cache
def document() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())  # type: ignore[no-any-return]


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(document(), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(SOURCE, resource)
    return registry


def _rooted(schema: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(schema).replace('"#/components/', f'"{SOURCE}#/components/'))  # type: ignore[no-any-return]


def _invalid(instance: Any, schema: dict[str, Any], *, request: bool) -> str:
    """Why ``instance`` does not conform ("" when it does): a request as written (read-only
    properties refused), a response as read."""
    validator_class = OAS30WriteValidator if request else OAS30ReadValidator
    error = best_match(validator_class(_rooted(schema), registry=_registry()).iter_errors(instance))
    if error is None:
        return ""
    while error.context:  # a union (a record's types): why the member for the instance's type fails
        wrong_type = {e.schema_path[0] for e in error.context if e.validator == "enum" and e.path == TYPE}
        inner = best_match(e for e in error.context if e.schema_path[0] not in wrong_type)
        if inner is None:
            break
        error = inner
    return f"{error.message} at {'/'.join(str(p) for p in error.absolute_path) or 'the top'}"


def _operation(method: str, path: str) -> tuple[str, str, dict[str, Any], dict[str, str]] | None:
    for template, item in document()["paths"].items():
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        matched = re.match(pattern, path)
        if matched and method.lower() in item:
            return template, method.lower(), item, matched.groupdict()
    return None


def _query_value(raw: str, schema: dict[str, Any]) -> Any:
    """A query string value as the type its schema names (they arrive as text)."""
    resolved = _resolve(schema)
    kind = resolved.get("type")
    try:
        if kind in ("number", "integer"):
            return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
        if kind == "boolean":
            return {"true": True, "false": False}.get(raw, raw)
    except ValueError:
        return raw
    return raw


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = document()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def request_problems(seen: Seen) -> list[str]:
    """What in a request does not follow Cloudflare's schema: its operation, path and query
    parameters, and body."""
    where = f"{seen.method} {seen.path}"
    found = _operation(seen.method, seen.path.removeprefix(PREFIX))
    if not seen.path.startswith(PREFIX) or found is None:
        return [f"{where}: no such operation in Cloudflare's API"]
    template, method, item, path_values = found
    spec = item[method]
    parameters = [_resolve(p) for p in [*item.get("parameters", []), *spec.get("parameters", [])]]
    declared = {(p["in"], p["name"]): p.get("schema", {}) for p in parameters}
    declared |= {("query", n): s for n, s in LATER_PARAMETERS.get((template, method), {}).items()}
    problems = []
    for name, value in path_values.items():
        if why := _invalid(value, declared.get(("path", name), {}), request=True):
            problems.append(f"{where}: path parameter {name}: {why}")
    for name, values in seen.query.items():
        if ("query", name) not in declared:
            problems.append(f"{where}: query parameter {name} is not Cloudflare's")
            continue
        schema = declared[("query", name)]
        for raw in values:
            if why := _invalid(_query_value(raw, schema), schema, request=True):
                problems.append(f"{where}: query parameter {name}={raw}: {why}")
    body_spec = spec.get("requestBody")
    if body_spec is None:
        if seen.body is not None:
            problems.append(f"{where}: a body where Cloudflare takes none")
    elif seen.body is None:
        if body_spec.get("required") and "schema" in body_spec["content"]["application/json"]:
            problems.append(f"{where}: no body where Cloudflare requires one")
    elif "schema" in body_spec["content"]["application/json"]:
        schema = body_spec["content"]["application/json"]["schema"]
        if schema.get("$ref") == RECORD_SCHEMA:
            schema = {"oneOf": _resolve(schema)["oneOf"]}
        if why := _invalid(seen.body, schema, request=True):
            problems.append(f"{where}: body: {why}")
    return problems


def response_problems(seen: Seen) -> list[str]:
    """What in the local API's answer to a request does not follow Cloudflare's schema for it
    (answers to requests outside the schema, and 5xx outages played by tests, are not checked)."""
    found = _operation(seen.method, seen.path.removeprefix(PREFIX))
    if found is None or seen.status >= 500:
        return []
    _template, method, item, _values = found
    responses = item[method]["responses"]
    spec = responses.get(str(seen.status))
    if spec is None and 400 <= seen.status < 500:
        spec = responses.get("4XX") or responses.get("4xx")
    where = f"{seen.method} {seen.path} → {seen.status}"
    if spec is None:
        return [f"{where}: a status Cloudflare does not document here"]
    schema = spec["content"]["application/json"]["schema"]
    if seen.status >= 400:
        failure = [s for s in schema.get("allOf", []) if s.get("$ref", "").endswith("-common-failure")]
        schema = failure[0] if failure else schema
    why = _invalid(seen.response, schema, request=False)
    return [f"{where}: {why}"] if why else []


if __name__ == "__main__":
    source, commit = sys.argv[1], sys.argv[2]
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    schema = cut(json.loads(Path(source).read_text()), commit)
    FIXTURE.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")

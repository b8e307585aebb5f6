"""What a sweep over an OpenAPI document needs: its operations with their path parameters, each
path filled with values by parameter name, the variants of those values to try, and a minimal
valid request body built from the operation's request schema.

::

    for operation in operations(document):
        for values in variants(operation, theirs, ours):
            url = operation.url(values)
            body = example(operation.body_schema, document) if operation.body_required else None

``variants`` keeps a sweep honest for paths with several parameters: every parameter the other
tenant's (``/webhooks/{theirs}/deliveries/{theirs}``), and each one alone the other tenant's while
the rest are the caller's own (``/webhooks/{ours}/deliveries/{theirs}``), which is where a child
looked up without its parent's owner would show.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

METHODS = ("get", "put", "post", "patch", "delete")
PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[str, ...]  # the path's parameters, in order
    body_schema: dict[str, Any] | None
    body_required: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, values: Mapping[str, str]) -> str:
        """The path with each parameter's value, percent-encoded as one segment (a ``/`` too)."""
        return PARAMETER.sub(lambda match: quote(values[match.group(1)], safe=""), self.path)


def operations(document: Mapping[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method not in METHODS:
                continue
            body = spec.get("requestBody") or {}
            schema = (body.get("content") or {}).get("application/json", {}).get("schema")
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    parameters=tuple(PARAMETER.findall(path)),
                    body_schema=schema,
                    body_required=bool(body.get("required")),
                )
            )
    return found


def unknown_parameters(operation: Operation, known: Mapping[str, object]) -> list[str]:
    return [name for name in operation.parameters if name not in known]


def variants(
    operation: Operation, theirs: Mapping[str, Sequence[str]], ours: Mapping[str, Sequence[str]]
) -> Iterator[dict[str, str]]:
    """Values for the path's parameters: every combination of theirs; then, for each parameter
    whose value differs between the two, that parameter theirs and every other one ours (the
    caller's first value of it, when the caller has one). Each once, in a stable order."""
    names = operation.parameters
    seen: set[tuple[str, ...]] = set()
    candidates = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(theirs[n] for n in names))
    ]
    for name in names:
        others = [other for other in names if other != name]
        if not all(ours.get(other) for other in others):
            continue
        for value in theirs[name]:
            if value not in ours.get(name, ()):
                candidates.append({other: value if other == name else ours[other][0] for other in names})
    for values in candidates:
        signature = tuple(values[n] for n in names)
        if signature not in seen:
            seen.add(signature)
            yield values


def ghost(value: str) -> str:
    """A value of the same shape that names nothing: its last character changed (ids end in ULID
    randomness; names and addresses in a top-level domain no tenant holds)."""
    return value[:-1] + ("Y" if value.endswith("Z") else "Z")


def resolve(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def example(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Any:
    """A small valid value of ``schema``: an object with its required properties only, the first
    non-null choice of a union, the first of an enum, the shortest string it allows."""
    schema = resolve(schema, document)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            choices = [c for c in schema[union] if resolve(c, document).get("type") != "null"]
            return example(choices[0], document) if choices else None
    if "allOf" in schema and "properties" not in schema:
        return example(schema["allOf"][0], document)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        names = list(schema.get("required") or ())
        # minProperties beyond the required ones: the first optional properties, in order.
        names += [n for n in properties if n not in names][
            : max(0, int(schema.get("minProperties", 0)) - len(names))
        ]
        return {name: example(properties[name], document) for name in names}
    if kind == "array":
        return [example(schema.get("items") or {}, document) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "string":
        return _string(schema)
    return None


def _string(schema: Mapping[str, Any]) -> str:
    fmt = schema.get("format")
    now = datetime.now(UTC)
    if fmt == "date-time":
        return (now - timedelta(hours=1)).isoformat()
    if fmt == "date":
        return now.date().isoformat()
    if fmt == "email":
        return "sweep@example.net"
    if fmt in ("uri", "url"):
        return "https://example.net/"
    shortest = "x" * max(1, int(schema.get("minLength", 1)))
    pattern = schema.get("pattern")
    if not pattern:
        return shortest
    # A pattern (a domain name, a local part, a header name...): the first of a few plain values
    # of common shapes that it accepts.
    candidates = (shortest, "sweep.example.net", "sweep", "Sweep-1", "sweep@example.net", "X-Sweep", "0" * 32)
    for candidate in candidates:  # ... and a 32-hex id (a Cloudflare zone's)
        if re.search(pattern, candidate) and len(candidate) >= int(schema.get("minLength", 0)):
            return candidate
    raise ValueError(f"no plain example matches the pattern {pattern!r}; add one here")

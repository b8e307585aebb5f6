"""Tools derived from the OpenAPI document: one per operation, with no glue per operation.

An operation's parameters (path, query, header) become top-level arguments under their API names;
its JSON request body becomes the ``body`` argument. Destructive tools get a required ``confirm``
argument; every tool that changes something gets an optional ``idempotency_key`` (the server
derives one from the call when it is absent). Schemas keep the document's ``$ref``s, rewritten to
point into the tool schema's own ``$defs`` so each schema stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailroom.mcp_server.curation import CURATED, Curated, Gate

SCOPES_EXTENSION = "x-mailroom-scopes"
NOT_A_TOOL_EXTENSION = "x-mailroom-not-a-tool"
_COMPONENT_REF = "#/components/schemas/"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_IDEMPOTENCY_HEADER = "idempotency-key"
_PATH_PARAMETER = re.compile(r"\{([^}]+)\}")

GATE_NOTES = {
    Gate.READ: "Safety: read-only; changes nothing.",
    Gate.WRITE: (
        "Safety: changes data (unavailable when the server runs with MAILROOM_MCP_READ_ONLY=true). "
        "Retrying is safe: the call carries an Idempotency-Key derived from the tool name and arguments, "
        "so the same call within 24 hours returns the first result instead of acting twice; pass "
        "idempotency_key only to repeat an identical call on purpose."
    ),
    Gate.DESTRUCTIVE: (
        "Safety: destructive or costly. Offered only when the server runs with "
        "MAILROOM_MCP_ALLOW_DESTRUCTIVE=true, and refused unless `confirm` equals {target}. Ask the "
        "user before calling. Retrying is safe (automatic Idempotency-Key, as for every write)."
    ),
}


class CurationMissing(LookupError):
    """An operation of the document has no row in ``curation.CURATED``."""


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path, query or header
    required: bool


@dataclass(frozen=True, slots=True)
class OperationTool:
    """One operation as a tool: what to show (name, description, schemas) and how to call it."""

    name: str
    description: str
    method: str
    path: str
    gate: Gate
    confirm_target: str  # "path.<name>", "body.<field>" or "tool"
    parameters: tuple[Parameter, ...]
    has_body: bool
    access: Mapping[str, list[str]] | None  # x-mailroom-scopes; None for a public operation
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    title: str = field(default="")

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation a tool can call: those marked ``x-mailroom-not-a-tool`` (signed with the
    operator's own secret, like the support API) take no token, so no agent can call them."""
    for path, item in (document.get("paths") or {}).items():
        for method, operation in item.items():
            if method in _METHODS and not operation.get(NOT_A_TOOL_EXTENSION):
                yield method.upper(), path, operation


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                "#/$defs/" + value.removeprefix(_COMPONENT_REF)
                if key == "$ref" and isinstance(value, str) and value.startswith(_COMPONENT_REF)
                else _rewrite_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _referenced(node: Any, components: Mapping[str, Any], found: dict[str, Any]) -> None:
    """Every component schema ``node`` reaches through ``$ref``s, into ``found``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENT_REF):
            name = ref.removeprefix(_COMPONENT_REF)
            if name not in found and name in components:
                found[name] = components[name]
                _referenced(components[name], components, found)
        for value in node.values():
            _referenced(value, components, found)
    elif isinstance(node, list):
        for item in node:
            _referenced(item, components, found)


def standalone(schema: dict[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with the component schemas it uses as its own ``$defs``."""
    defs: dict[str, Any] = {}
    _referenced(schema, components, defs)
    result = _rewrite_refs(schema)
    if defs:
        result["$defs"] = {name: _rewrite_refs(value) for name, value in defs.items()}
    return result  # type: ignore[no-any-return]


def _resolve(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_COMPONENT_REF):
        return components.get(ref.removeprefix(_COMPONENT_REF), {})  # type: ignore[no-any-return]
    return schema


def _json_schema(content: Mapping[str, Any] | None) -> dict[str, Any] | None:
    media = (content or {}).get("application/json")
    return dict(media["schema"]) if media and "schema" in media else None


def _output_schema(operation: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any] | None:
    """The structured output's schema: only when every success answers the same JSON object (a
    204, a redirect or raw bytes have no JSON to validate, so such tools declare none)."""
    successes = [
        response
        for status, response in (operation.get("responses") or {}).items()
        if str(status).startswith(("2", "3"))
    ]
    schemas = [_json_schema(response.get("content")) for response in successes]
    if not schemas or any(s is None for s in schemas) or any(s != schemas[0] for s in schemas):
        return None
    schema = schemas[0]
    assert schema is not None
    # The protocol wants ``"type": "object"`` at the root itself, not behind a ``$ref``.
    root = dict(_resolve(schema, components))
    if root.get("type") != "object":
        return None
    return standalone(root, components)


def _confirm_target(curated: Curated, path: str) -> str:
    if curated.confirm:
        return curated.confirm
    names = _PATH_PARAMETER.findall(path)
    if not names:
        raise CurationMissing(
            f"{path}: a destructive tool without a path parameter must name its confirm target"
        )
    return f"path.{names[-1]}"


def describe_target(target: str) -> str:
    kind, _, name = target.partition(".")
    if kind == "tool":
        return "this tool's name"
    return f"the `{name}` {'argument' if kind == 'path' else 'field of the body'}"


def build(document: Mapping[str, Any], *, strict: bool = True) -> list[OperationTool]:
    """A tool per curated operation of ``document``. ``strict`` (tests, the default) raises
    ``CurationMissing`` naming every uncurated operation at once; the running server passes
    ``strict=False`` and leaves them out, so a ``mailroom mcp`` older than the API it talks to still
    serves every operation it knows instead of refusing to start."""
    components = (document.get("components") or {}).get("schemas") or {}
    tools: list[OperationTool] = []
    missing: list[str] = []
    for method, path, operation in operations(document):
        curated = CURATED.get((method, path))
        if curated is None:
            missing.append(f"{method} {path} ({operation.get('summary') or 'no summary'})")
        else:
            tools.append(_tool(method, path, operation, curated, components))
    if missing and strict:
        raise CurationMissing(
            f"{len(missing)} operation(s) have no row in mailroom/mcp_server/curation.py "
            '(one row each: ("METHOD /path", "tool_name", R|W|D, "When to use it.")): ' + "; ".join(missing)
        )
    return tools


def _tool(
    method: str, path: str, operation: Mapping[str, Any], curated: Curated, components: Mapping[str, Any]
) -> OperationTool:
    properties: dict[str, Any] = {}
    required: list[str] = []
    parameters: list[Parameter] = []
    for parameter in operation.get("parameters") or []:
        if parameter.get("in") == "header" and parameter["name"].lower() == _IDEMPOTENCY_HEADER:
            continue  # the server sends it itself (see idempotency_key below)
        schema = dict(parameter.get("schema") or {})
        if parameter.get("description") and "description" not in schema:
            schema["description"] = parameter["description"]
        properties[parameter["name"]] = schema
        is_required = bool(parameter.get("required")) or parameter.get("in") == "path"
        if is_required:
            required.append(parameter["name"])
        parameters.append(Parameter(parameter["name"], parameter["in"], is_required))
    body = _json_schema((operation.get("requestBody") or {}).get("content"))
    if body is not None:
        properties["body"] = (
            {**body, "description": "The request body (JSON)."} if "$ref" not in body else body
        )
        if (operation.get("requestBody") or {}).get("required"):
            required.append("body")
    confirm_target = ""
    if curated.gate is Gate.DESTRUCTIVE:
        confirm_target = _confirm_target(curated, path)
        properties["confirm"] = {
            "type": "string",
            "description": f"Must equal {describe_target(confirm_target)}: proof the target was meant.",
        }
        required.append("confirm")
    mutating = method in ("POST", "PUT", "PATCH", "DELETE")
    if mutating:
        properties["idempotency_key"] = {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Optional. Omit it: one is derived from the call. Give a new one only to repeat "
            "an identical call on purpose.",
        }
    input_schema = standalone(
        {"type": "object", "properties": properties, "required": required, "additionalProperties": False},
        components,
    )
    summary = str(operation.get("summary") or "").strip()
    details = str(operation.get("description") or "").strip()
    gate_note = GATE_NOTES[curated.gate].format(target=describe_target(confirm_target))
    description = "\n\n".join(
        part for part in (curated.description, f"{summary}. {details}".strip(), gate_note) if part
    )
    return OperationTool(
        name=curated.name,
        title=summary,
        description=description,
        method=method,
        path=path,
        gate=curated.gate,
        confirm_target=confirm_target,
        parameters=tuple(parameters),
        has_body=body is not None,
        access=operation.get(SCOPES_EXTENSION),
        input_schema=input_schema,
        output_schema=_output_schema(operation, components),
    )

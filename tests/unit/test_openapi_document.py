"""The OpenAPI document as a whole: what client generators and the MCP server rely on for every
operation, whoever wrote it."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.api.openapi import document

OPERATIONS = [
    (path, method, operation)
    for path, item in document()["paths"].items()
    for method, operation in item.items()
]


def test_schema_names_are_plain_names() -> None:
    # Two models of one name in different modules make FastAPI fall back to module paths
    # (mailroom__api__routers__x__Name): generated clients would get those as type names.
    mangled = [name for name in document()["components"]["schemas"] if "__" in name]
    assert mangled == []


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_every_operation_is_described_and_typed(path: str, method: str, operation: dict[str, Any]) -> None:
    assert operation.get("summary"), "a summary"
    assert operation.get("description"), "a description for client authors and models"
    assert "security" in operation
    successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
    assert successes, "a documented success"
    for status, response in successes.items():
        for media_type, content in (response.get("content") or {}).items():
            if media_type != "application/json":
                continue
            schema = content.get("schema", {})
            # A free-form object tells a client nothing: every JSON success has a model.
            assert (
                schema.get("$ref") or schema.get("type") not in (None, "object") or schema.get("properties")
            ), f"{status}: a named model, not a free-form object"
    for status, response in operation["responses"].items():
        if status.isdigit() and int(status) >= 400:
            ref = response["content"]["application/json"]["schema"]["$ref"]
            expected = {"/api/v0/": "V0Error"}.get(path[:8], "ErrorEnvelope")
            assert ref.endswith("GatewayError" if status == "413" else expected)

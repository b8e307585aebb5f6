"""Helpers for the /api/v0 integration tests: the v0 error shape and the reference's timestamps."""

from __future__ import annotations

import re
from typing import Any

from tests.support.lambda_api import Result

# agentmail-v0-api.txt shows every timestamp so: "2025-01-15T10:30:00.000Z".
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def v0_error(result: Result, status: int, name: str) -> dict[str, Any]:
    """The v0 error shape exactly: ``{"name", "message"}``, plus ``errors`` on validation."""
    assert result.status == status, (result.status, result.body)
    body = result.json()
    assert body["name"] == name and isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"name", "message", "errors"}
    return body  # type: ignore[no-any-return]

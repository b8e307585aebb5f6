"""Pieces every ``/api/v0`` router's models share: the reference's timestamps, the optional
Idempotency-Key header, and the description of a v0 error response.

The reference (agentmail-v0-api.txt) shows every time as ``2025-01-15T10:30:00.000Z``: UTC with
milliseconds. They are stored in that form and returned as stored, so the models keep them strings
and say their format, instead of re-serializing datetimes (which would drop the milliseconds).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

# The pipeline checks the header; the document states the same rule.
from mailroom.api.pipeline import _IDEMPOTENCY_KEY_RE

Timestamp = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        examples=["2025-01-15T10:30:00.000Z"],
        description="UTC, with milliseconds",
    ),
]


def idempotent() -> dict[str, Any]:
    """``openapi_extra`` of a v0 mutating route: the optional ``Idempotency-Key`` header.

    v0 does not require one (the reference has none); one that is sent is honoured as on v1 (the
    pipeline checks and stores it, so FastAPI does not declare it as a parameter itself)."""
    return {
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Optional. Retrying with the same key and body replays the first answer "
                "(with `Idempotent-Replayed: true`) instead of doing the operation again; the same key "
                "with another body is 409 ConflictError.",
                "schema": {"type": "string", "pattern": _IDEMPOTENCY_KEY_RE.pattern},
            }
        ]
    }

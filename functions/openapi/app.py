"""GET /api/openapi.json (no auth)."""

import json
from typing import Any

from mailroom.api.openapi import document


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "cache-control": "public, max-age=300"},
        "body": json.dumps(document()),
    }

"""Lambda authorizer: classifies the bearer token; see mailroom.auth for why it never denies."""

from typing import Any

from mailroom.authorizer import handle


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event)

"""SES receipt rule (Lambda action) or S3 ObjectCreated under inbound/ → deliver the received message."""

from typing import Any

from mailroom.inbound_worker import inbound


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return inbound(event, context)

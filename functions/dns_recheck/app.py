"""EventBridge schedule → recheck the DNS of every domain that is due."""

from typing import Any

from mailroom.scheduled import dns_recheck


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return dns_recheck(event)

"""EventBridge schedule → release expired invites, re-send stalled purge jobs."""

from typing import Any

from mailroom.scheduled import mailbox_sweep


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return mailbox_sweep(event)

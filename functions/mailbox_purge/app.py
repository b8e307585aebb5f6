"""SQS (MailboxPurgeQueue) → delete the stored mail of deleted mailboxes."""

from typing import Any

from mailroom.workers import mailbox_purge


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return mailbox_purge(event, context)

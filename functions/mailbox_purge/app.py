"""SQS (MailboxPurgeQueue) → delete the stored mail of deleted mailboxes."""

from mailroom.entry.queues import mailbox_purge as handler

__all__ = ["handler"]

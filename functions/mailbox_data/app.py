"""/api/v1/mailbox/{mailboxId}/data*: a mailbox's data documents (docs/automation-inbound.md)."""

from mailroom.api.routers import mailbox_data
from mailroom.entry.http import api_handler

handler = api_handler(mailbox_data.router)

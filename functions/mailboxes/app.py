"""/api/v1/mailboxes*: mailboxes, their invites, message tokens, forwarding and delete intents."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import delete_intents, invites, mailboxes, message_tokens

# Invites first: their fixed paths must win over /mailboxes/{mailbox_id}.
handler = lambda_handler(
    invites.router, mailboxes.router, message_tokens.mailbox_router, delete_intents.mailbox_router
)

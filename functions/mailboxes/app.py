"""/api/v1/mailboxes*: mailboxes, their invites, message tokens, forwarding, delete intents, and
their rules, auto-reply, Sieve script and processing log."""

from mailroom.api.routers import delete_intents, invites, mailboxes, message_tokens, rules
from mailroom.entry.http import api_handler

# Invites first: their fixed paths must win over /mailboxes/{mailbox_id}.
handler = api_handler(
    invites.router,
    mailboxes.router,
    message_tokens.mailbox_router,
    delete_intents.mailbox_router,
    rules.router,
)

"""/api/v0/inboxes and /api/v0/inboxes/{inboxId}: inboxes, which are mailboxes (agentmail v0)."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers.v0 import inboxes

handler = lambda_handler(inboxes.router)

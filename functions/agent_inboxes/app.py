"""/api/v0/inboxes and /api/v0/inboxes/{inboxId}: inboxes, which are mailboxes (agentmail v0)."""

from mailroom.api.routers.v0 import inboxes
from mailroom.entry.http import api_handler

handler = api_handler(inboxes.router)

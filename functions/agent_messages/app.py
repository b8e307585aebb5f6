"""/api/v0/inboxes/{inboxId}/messages*, /api/v0/inboxes/{inboxId}/threads*: agentmail v0 mail."""

from mailroom.api.routers.v0 import messages, threads
from mailroom.entry.http import api_handler

handler = api_handler(messages.router, threads.router)

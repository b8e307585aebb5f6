"""/api/v0/inboxes/{inboxId}/messages*, /api/v0/inboxes/{inboxId}/threads*: agentmail v0 mail."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers.v0 import messages, threads

handler = lambda_handler(messages.router, threads.router)

"""/api/v1/messages*, /api/v1/threads*: a message token reads and organizes its mailbox's mail."""

from mailroom.api.routers import messages
from mailroom.entry.http import api_handler

handler = api_handler(messages.router, messages.threads_router)

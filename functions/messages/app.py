"""/api/v1/messages*, /api/v1/threads*: a message token reads and organizes its mailbox's mail."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import messages

handler = lambda_handler(messages.router, messages.threads_router)

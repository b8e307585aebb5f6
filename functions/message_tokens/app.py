"""/api/v1/message-tokens/* and GET /api/v1/messages/_ping."""

from mailroom.api.routers import message_tokens
from mailroom.entry.http import api_handler

handler = api_handler(message_tokens.router)

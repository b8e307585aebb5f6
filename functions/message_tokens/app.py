"""/api/v1/message-tokens/* and GET /api/v1/messages/_ping."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import message_tokens

handler = lambda_handler(message_tokens.router)

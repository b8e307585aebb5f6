"""POST /api/v1/messages/send and GET /api/v1/messages/{uid}/reply|reply-all|forward."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import send

handler = lambda_handler(send.router)

"""POST /api/v1/messages/send and GET /api/v1/messages/{uid}/reply|reply-all|forward."""

from mailroom.api.routers import send
from mailroom.entry.http import api_handler

handler = api_handler(send.router)

"""GET /api/v1/me, GET /api/v1/account."""

from mailroom.api.routers import account
from mailroom.entry.http import api_handler

handler = api_handler(account.router)

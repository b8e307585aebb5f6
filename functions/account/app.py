"""GET /api/v1/me, GET /api/v1/account."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import account

handler = lambda_handler(account.router)

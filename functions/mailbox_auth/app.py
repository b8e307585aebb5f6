"""Public: POST /api/v1/auth/mailbox-token and POST /api/v1/auth/invites:redeem."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import auth

handler = lambda_handler(auth.router)

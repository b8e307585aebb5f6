"""Public: POST /api/v1/auth/mailbox-token and POST /api/v1/auth/invites:redeem."""

from mailroom.api.routers import auth
from mailroom.entry.http import api_handler

handler = api_handler(auth.router)

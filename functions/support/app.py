"""/api/v1/support/* (HMAC-signed; no token)."""

from mailroom.api.routers import support
from mailroom.entry.http import api_handler

handler = api_handler(support.router)

"""/api/v1/tokens: create, list, revoke ops tokens."""

from mailroom.api.routers import tokens
from mailroom.entry.http import api_handler

handler = api_handler(tokens.router)

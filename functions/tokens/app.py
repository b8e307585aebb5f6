"""/api/v1/tokens: create, list, revoke ops tokens."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import tokens

handler = lambda_handler(tokens.router)

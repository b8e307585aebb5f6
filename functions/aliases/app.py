"""/api/v1/aliases*."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import aliases

handler = lambda_handler(aliases.router)

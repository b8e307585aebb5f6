"""/api/v1/verify*."""

from mailroom.api.routers import verify
from mailroom.entry.http import api_handler

handler = api_handler(verify.router)

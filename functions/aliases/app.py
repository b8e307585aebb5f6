"""/api/v1/aliases*."""

from mailroom.api.routers import aliases
from mailroom.entry.http import api_handler

handler = api_handler(aliases.router)

"""/api/v1/tickets*."""

from mailroom.api.routers import tickets
from mailroom.entry.http import api_handler

handler = api_handler(tickets.router)

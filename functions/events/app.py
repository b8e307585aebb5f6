"""GET /api/v1/events and /api/v1/events/{id}."""

from mailroom.api.routers import events
from mailroom.entry.http import api_handler

handler = api_handler(events.router)

"""/api/v1/delete-intents/*."""

from mailroom.api.routers import delete_intents
from mailroom.entry.http import api_handler

handler = api_handler(delete_intents.router)

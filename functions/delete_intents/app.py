"""/api/v1/delete-intents/*."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import delete_intents

handler = lambda_handler(delete_intents.router)

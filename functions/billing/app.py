"""/api/v1/billing/*."""

from mailroom.api.routers import billing
from mailroom.entry.http import api_handler

handler = api_handler(billing.router)

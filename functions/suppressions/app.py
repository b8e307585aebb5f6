"""/api/v1/suppressions*."""

from mailroom.api.routers import suppressions
from mailroom.entry.http import api_handler

handler = api_handler(suppressions.router)

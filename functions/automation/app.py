"""/api/v1/rules*, /api/v1/actions*, /api/v1/routes*: the organization's automation (docs/automation.md)."""

from mailroom.api.routers import automation
from mailroom.entry.http import api_handler

handler = api_handler(automation.router)

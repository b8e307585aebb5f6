"""GET /api/v1/audit-log."""

from mailroom.api.routers import audit
from mailroom.entry.http import api_handler

handler = api_handler(audit.router)

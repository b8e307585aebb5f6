"""GET /api/v1/audit-log."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import audit

handler = lambda_handler(audit.router)

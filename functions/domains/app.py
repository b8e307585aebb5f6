"""/api/v1/domains*, /api/v1/dns-checks/*."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import domains

handler = lambda_handler(domains.router)

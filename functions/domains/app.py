"""/api/v1/domains*, /api/v1/dns-checks/*."""

from mailroom.api.routers import domains
from mailroom.entry.http import api_handler

handler = api_handler(domains.router)

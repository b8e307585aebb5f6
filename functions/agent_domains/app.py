"""/api/v0/domains*: custom domains, their DNS records and verification (agentmail v0)."""

from mailroom.api.routers.v0 import domains
from mailroom.entry.http import api_handler

handler = api_handler(domains.router)

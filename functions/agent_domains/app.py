"""/api/v0/domains*: custom domains, their DNS records and verification (agentmail v0)."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers.v0 import domains

handler = lambda_handler(domains.router)

"""/api/v1/route53*: DNS set-up through Route 53 (zones, connect, preview, apply)."""

from mailroom.api.routers import route53
from mailroom.entry.http import api_handler

handler = api_handler(route53.router)

"""/api/v1/cloudflare*: DNS set-up through Cloudflare (tokens, zones, connect, preview, apply)."""

from mailroom.api.routers import cloudflare
from mailroom.entry.http import api_handler

handler = api_handler(cloudflare.router)

"""/api/v0/webhooks*: webhook subscriptions, delivered like v1's (agentmail v0)."""

from mailroom.api.routers.v0 import webhooks
from mailroom.entry.http import api_handler

handler = api_handler(webhooks.router)

"""/api/v0/webhooks*: webhook subscriptions, delivered like v1's (agentmail v0)."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers.v0 import webhooks

handler = lambda_handler(webhooks.router)

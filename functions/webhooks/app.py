"""/api/v1/webhooks*: webhooks, their deliveries, secret rotation, tests, retries and replays."""

from mailroom.api.routers import webhooks
from mailroom.entry.http import api_handler

handler = api_handler(webhooks.router)

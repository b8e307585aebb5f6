"""/api/v1/webhooks*: webhooks, their deliveries, secret rotation, tests, retries and replays."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import webhooks

handler = lambda_handler(webhooks.router)

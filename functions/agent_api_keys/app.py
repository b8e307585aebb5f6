"""/api/v0/api-keys*: the organization's inai_ API keys (agentmail v0)."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers.v0 import api_keys

handler = lambda_handler(api_keys.router)

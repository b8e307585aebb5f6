"""/api/v0/api-keys*: the organization's inai_ API keys (agentmail v0)."""

from mailroom.api.routers.v0 import api_keys
from mailroom.entry.http import api_handler

handler = api_handler(api_keys.router)

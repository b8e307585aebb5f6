"""/api/v0/organizations: the caller's organization, its counts and limits (agentmail v0)."""

from mailroom.api.routers.v0 import organizations
from mailroom.entry.http import api_handler

handler = api_handler(organizations.router)

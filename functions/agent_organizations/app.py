"""/api/v0/organizations: the caller's organization, its counts and limits (agentmail v0)."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers.v0 import organizations

handler = lambda_handler(organizations.router)

"""/api/v1/suppressions*."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import suppressions

handler = lambda_handler(suppressions.router)

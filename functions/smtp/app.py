"""/api/v1/smtp*."""

from mailroom.api.routers import smtp
from mailroom.entry.http import api_handler

handler = api_handler(smtp.router)

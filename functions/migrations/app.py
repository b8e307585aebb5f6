"""/api/v1/migrations*: test a source connection, start, list, read, cancel, retry, delete."""

from mailroom.api.routers import migrations
from mailroom.entry.http import api_handler

handler = api_handler(migrations.router)

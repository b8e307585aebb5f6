"""/api/v1/migrations*: test a source connection, start, list, read, cancel, retry, delete."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import migrations

handler = lambda_handler(migrations.router)

"""/api/v1/migrations/bulk*: preview, start, list, read, cancel, retry, resume, delete, job password."""

from mailroom.api.routers import migration_batches
from mailroom.entry.http import api_handler

handler = api_handler(migration_batches.router)

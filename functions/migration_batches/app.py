"""/api/v1/migrations/bulk*: preview, start, list, read, cancel, retry, resume, delete, job password."""

from mailroom.api.app import lambda_handler
from mailroom.api.routers import migration_batches

handler = lambda_handler(migration_batches.router)

"""``migrations:write``, counted against the migration write bucket: the dependency of every route
that writes a migration, single or bulk (two functions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from mailroom.api.errors import ApiError
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import migration_writes
from mailroom.store.table import Table

_WRITE_SCOPE = require("migrations:write")


def writer(principal: Annotated[Principal, Depends(_WRITE_SCOPE)]) -> Principal:
    """``migrations:write``, counted against the migration write bucket (10 per minute per token)."""
    try:
        migration_writes.count_write(Table(), principal.org_id, principal.token_id)
    except migration_writes.WriteLimitReached as exc:
        raise ApiError(
            429,
            exc.code,
            exc.message,
            hint=exc.hint,
            retryable=True,
            headers={
                "Retry-After": str(exc.retry_after),
                "X-Migration-RateLimit-Limit": str(exc.limit),
                "X-Migration-RateLimit-Remaining": "0",
                "X-Migration-RateLimit-Reset": str(exc.resets_at),
            },
        ) from exc
    return principal


WRITE = writer
Writer = Annotated[Principal, Depends(WRITE)]

"""The migration write bucket (trekmail-migrations-api.txt, "Rate limits"): migration writes (test a
connection, start, cancel, retry, delete, and the bulk endpoints' writes) are limited to
``MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE`` (10) per token per minute, besides the token's normal
limit. The count is one atomic ADD on the token's minute (store/ratelimits.py): concurrent writes
cannot both take the last one."""

from __future__ import annotations

import time

from mailroom.errors import TooManyRequests
from mailroom.settings import get_settings
from mailroom.store import ratelimits
from mailroom.store.table import Table


class WriteLimitReached(TooManyRequests):
    """Over the bucket: ``limit`` per minute, the next window from ``resets_at`` (epoch seconds)."""

    def __init__(self, limit: int, resets_at: int, retry_after: int) -> None:
        super().__init__(
            "rate_limited",
            f"Migration write operations are limited to {limit} per minute per token.",
            hint=f"Retry after {retry_after} seconds.",
            retry_after=retry_after,
        )
        self.limit = limit
        self.resets_at = resets_at


def count_write(table: Table, org_id: str, token_id: str, *, now: float | None = None) -> None:
    """Count one migration write of the token; WriteLimitReached (429) past the limit."""
    limit = get_settings().migration_write_limit_per_minute
    moment = time.time() if now is None else now
    window = ratelimits.hit(table, org_id, f"migrations-write:{token_id}", limit=limit, now=moment)
    if window.exceeded:
        raise WriteLimitReached(limit, window.resets_at, max(1, window.resets_at - int(moment)))

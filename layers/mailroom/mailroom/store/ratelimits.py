"""Fixed-window request counting per token per minute (one conditional-free atomic ADD per request)."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.store import keys
from mailroom.store.table import Table, values


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    used: int
    resets_at: int  # epoch seconds when the window ends

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit


def hit(
    table: Table, org_id: str, bucket: str, *, limit: int, now: float, window_seconds: int = 60
) -> Window:
    start = int(now) - int(now) % window_seconds
    resets_at = start + window_seconds
    item = table.update(
        keys.rate_pk(org_id, bucket),
        str(start),
        "ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)",
        names={"#ttl": "ttl"},
        expression_values=values(one=1, ttl=resets_at + window_seconds),
        return_values="UPDATED_NEW",
    )
    return Window(limit=limit, used=int(item.get("hits", 1)), resets_at=resets_at)

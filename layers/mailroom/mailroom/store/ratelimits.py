"""Fixed-window request counting per token per minute.

``hit`` counts a request with one conditional-free atomic ADD and returns the window's count. A
request that must also take an idempotency claim counts itself inside the claim's transaction
instead (``hit_op``): there the ADD is conditional (the window still has room), since a transaction
returns no values; a cancelled transaction's old item (``window_of``) then says how full the window
was, and the count after a successful one is read back with the request's first read (``window_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.store import keys
from mailroom.store.table import Item, Table, values

WINDOW_SECONDS = 60
ADD_HIT = "ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)"


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


def _start(now: float, window_seconds: int) -> int:
    return int(now) - int(now) % window_seconds


def window_key(
    org_id: str, bucket: str, *, now: float, window_seconds: int = WINDOW_SECONDS
) -> tuple[str, str]:
    """The key of the window ``now`` falls in."""
    return keys.rate_pk(org_id, bucket), str(_start(now, window_seconds))


def window_of(item: Item | None, *, limit: int, now: float, window_seconds: int = WINDOW_SECONDS) -> Window:
    """The window ``now`` falls in as ``item`` (its stored window item, None: none yet) holds it."""
    resets_at = _start(now, window_seconds) + window_seconds
    return Window(limit=limit, used=int((item or {}).get("hits", 0)), resets_at=resets_at)


def hit(
    table: Table, org_id: str, bucket: str, *, limit: int, now: float, window_seconds: int = WINDOW_SECONDS
) -> Window:
    pk, sk = window_key(org_id, bucket, now=now, window_seconds=window_seconds)
    resets_at = int(sk) + window_seconds
    item = table.update(
        pk,
        sk,
        ADD_HIT,
        names={"#ttl": "ttl"},
        expression_values=values(one=1, ttl=resets_at + window_seconds),
        return_values="UPDATED_NEW",
    )
    return Window(limit=limit, used=int(item.get("hits", 1)), resets_at=resets_at)


def hit_op(
    org_id: str, bucket: str, *, limit: int, now: float, window_seconds: int = WINDOW_SECONDS
) -> dict[str, Any]:
    """``hit`` as a TransactWriteItems ``Update`` that only counts a request the window has room for
    (the transaction is cancelled otherwise, with the window item as it was: ``window_of``)."""
    pk, sk = window_key(org_id, bucket, now=now, window_seconds=window_seconds)
    resets_at = int(sk) + window_seconds
    return {
        "Update": {
            "Key": {"PK": {"S": pk}, "SK": {"S": sk}},
            "UpdateExpression": ADD_HIT,
            "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": values(one=1, ttl=resets_at + window_seconds, limit=limit),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }

"""DynamoDB single-item writes are atomic, as they are on AWS.

moto applies PutItem, UpdateItem and DeleteItem without a lock, so two threads updating one item
at once (the moto server serves requests on threads; in-process tests race requests on threads)
can read the same old value and both write: an ``ADD hits :one`` counts once for two requests, and
a conditional write's condition can hold for both. Each write now holds the lock transactions
already hold (``transactions.WRITE_LOCK``), so writes to the table happen one at a time.
"""

from __future__ import annotations

import functools
from typing import Any

from local.moto_patches.transactions import WRITE_LOCK

_WRITES = ("put_item", "update_item", "delete_item")


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_mailroom_atomic_writes", False):
        return
    for name in _WRITES:
        write = getattr(DynamoDBBackend, name)

        @functools.wraps(write)
        def atomic(self: Any, *args: Any, __write: Any = write, **kwargs: Any) -> Any:
            with WRITE_LOCK:
                return __write(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, atomic)
    DynamoDBBackend._mailroom_atomic_writes = True  # type: ignore[attr-defined]

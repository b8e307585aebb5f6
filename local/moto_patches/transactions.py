"""DynamoDB transactions: roll back the items a transaction names, not a copy of the table.

moto deep-copies every table a TransactWriteItems names before applying it, to restore on
cancellation: each transaction costs O(table size), so storing N messages (one transaction each)
costs O(N^2) and an 8,000-message import slows down as it goes. The same rollback, from copies of
just the items the transaction names (each item at most once: moto refuses a transaction naming
one twice) and of the stream's length. Transactions run one at a time, as moto's whole-table
restore already assumed.

A ``ClientRequestToken`` makes a transaction idempotent, as on AWS (for ten minutes): botocore sends
one with every TransactWriteItems and keeps it when it retries, so a request that timed out on
the client but was applied is answered as applied when retried, not refused by its own conditions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from local.moto_patches import query_index, streams

# Held by every DynamoDB write (see item_writes): one at a time, as an item-level write is atomic on AWS.
WRITE_LOCK = threading.RLock()


class _TablesNotCopied:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a Table is "copied" as
    itself (the transaction's own rollback below replaces that copy); everything else is copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


@dataclass(slots=True)
class _SavedItem:
    table: Any
    hash_key: Any
    range_key: Any
    item: Any  # a copy of the item before the transaction, None when there was none


def _saved_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[_SavedItem]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        if table is None or not key or table.hash_key_attr not in key:
            continue  # moto refuses the transaction before writing anything
        if table.has_range_key and table.range_key_attr not in key:
            continue
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.has_range_key else None
        current = table.get_item(hash_key, range_key)
        saved.append(_SavedItem(table, hash_key, range_key, copy.deepcopy(current)))
    return saved


def _roll_back(saved: list[_SavedItem], stream_ends: dict[int, tuple[Any, int | None]]) -> None:
    for entry in saved:
        if entry.range_key is None:
            if entry.item is None:
                entry.table.items.pop(entry.hash_key, None)
            else:
                entry.table.items[entry.hash_key] = entry.item
        elif entry.item is None:
            entry.table.items[entry.hash_key].pop(entry.range_key, None)
        else:
            entry.table.items[entry.hash_key][entry.range_key] = entry.item
        query_index.reindex(entry.table, entry.hash_key, entry.range_key)
    # A cancelled transaction leaves no stream records (as on AWS).
    for table, end in stream_ends.values():
        now = streams.stream_end(table)
        if end is not None and now is not None and now > end:
            records = table.stream_shard.items
            del records[max(0, len(records) - (now - end)) :]


TOKEN_SECONDS = 600  # how long AWS remembers a ClientRequestToken
_TOKENS: dict[str, tuple[float, str]] = {}  # token → (when it was applied, digest of its items)


def _idempotent(handler: Any) -> Any:
    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return handler(self)
        request = json.dumps(self.body["TransactItems"], sort_keys=True, default=repr)  # B values: bytes
        digest = hashlib.sha256(request.encode()).hexdigest()
        with WRITE_LOCK:  # the check and the transaction at once: a retry waits for the original
            now = time.monotonic()
            for stale in [t for t, (at, _) in _TOKENS.items() if now - at > TOKEN_SECONDS]:
                del _TOKENS[stale]
            seen = _TOKENS.get(token)
            if seen is not None and seen[1] == digest:
                from moto.core.responses import ActionResult

                # Applied before: succeeds again without applying anything.
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
            result = handler(self)
            _TOKENS[token] = (now, digest)
            return result

    return transact_write_items


def install() -> None:
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoDBBackend, "_mailroom_item_rollback", False):
        return
    dynamodb_models.copy = _TablesNotCopied()  # type: ignore[attr-defined,assignment]
    transact_write_items = DynamoDBBackend.transact_write_items

    def item_rollback_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        # The stream lock is held throughout so that the records a rollback removes are this
        # transaction's (another request's write waits to append its record).
        with WRITE_LOCK, streams.LOCK:
            saved = _saved_items(self, transact_items)
            stream_ends = {id(s.table): (s.table, streams.stream_end(s.table)) for s in saved}
            try:
                transact_write_items(self, transact_items)
            except Exception:
                _roll_back(saved, stream_ends)
                raise

    DynamoDBBackend.transact_write_items = item_rollback_transact_write_items  # type: ignore[method-assign]
    DynamoHandler.transact_write_items = _idempotent(DynamoHandler.transact_write_items)  # type: ignore[method-assign]
    DynamoDBBackend._mailroom_item_rollback = True  # type: ignore[attr-defined]

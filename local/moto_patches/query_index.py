"""DynamoDB queries: the partition or the index entry, not every item of the table, sorted.

moto answers every Query by sorting every item of the table (``Table.all_items``) and then testing
each against the key condition: O(table size x log) per query, so storing N messages (a few GSI
queries each: duplicate check, thread lookup) costs O(N^2 log N) and an 8,000-message import
spent most of moto's time sorting. A query on the table now looks at its partition only, and a
query on a global secondary index at the items of an index of GSI hash key -> primary keys kept
beside the table (built on the first such query, then updated by every write: put, delete,
update, and a transaction's rollback, see ``reindex``). moto still applies its own key conditions,
sort order, filters and pages to those candidates, so the answer is the same. Like a GSI on AWS,
the index catches up with a write at the end of that write's request, not within it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

_LOCK = threading.RLock()
_query_candidates = threading.local()


@dataclass(slots=True)
class _GsiIndex:
    shape: tuple[tuple[str, tuple[str, ...]], ...]  # (index name, hash key attributes) per GSI
    members: dict[tuple[str, tuple[Any, ...]], dict[tuple[Any, Any], None]] = field(default_factory=dict)
    entries: dict[tuple[Any, Any], list[tuple[str, tuple[Any, ...]]]] = field(default_factory=dict)


def _gsi_shape(table: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (str(index.name), tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"))
        for index in table.global_indexes or []
    )


def _stored(table: Any, hash_key: Any, range_key: Any) -> Any:
    partition = table.items.get(hash_key)
    if partition is None or not table.range_key_attr:
        return partition
    return partition.get(range_key)


def _add(index: _GsiIndex, primary: tuple[Any, Any], item: Any) -> None:
    keys = []
    for name, attributes in index.shape:
        values = tuple(item.attrs.get(attribute) for attribute in attributes)
        if all(value is not None for value in values):
            keys.append((name, values))
            index.members.setdefault((name, values), {})[primary] = None
    if keys:
        index.entries[primary] = keys


def _gsi_index(table: Any) -> _GsiIndex:
    """The table's index, built from its items if missing or if its GSIs changed (UpdateTable)."""
    with _LOCK:
        shape = _gsi_shape(table)
        index: _GsiIndex | None = table.__dict__.get("_mailroom_gsi_index")
        if index is None or index.shape != shape:
            index = _GsiIndex(shape)
            for hash_key, partition in list(table.items.items()):
                items = list(partition.values()) if table.range_key_attr else [partition]
                for item in items:
                    _add(index, (hash_key, item.range_key if table.range_key_attr else None), item)
            table.__dict__["_mailroom_gsi_index"] = index
        return index


def reindex(table: Any, hash_key: Any, range_key: Any) -> None:
    """After a write to one item: its index entries follow (if the table's index is built yet)."""
    with _LOCK:
        index: _GsiIndex | None = table.__dict__.get("_mailroom_gsi_index")
        if index is None:
            return  # built from the items, as they are then, by the first query that needs it
        primary = (hash_key, range_key if table.range_key_attr else None)
        for key in index.entries.pop(primary, []):
            bucket = index.members.get(key)
            if bucket is not None:
                bucket.pop(primary, None)
                if not bucket:
                    del index.members[key]
        item = _stored(table, hash_key, range_key)
        if item is not None:
            _add(index, primary, item)


def _candidates(table: Any, hash_key: Any, index_name: str | None, conditions: Any) -> list[Any] | None:
    """Every item the query can match (a superset; moto sorts them by the full key, so their order
    does not matter), or None for moto's own scan of the table."""
    if not index_name:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)
        if partition is None:
            return []
        return list(partition.values()) if table.range_key_attr else [partition]
    wanted = dict(conditions or [])
    if any(index.name == index_name for index in table.indexes or []):  # local: the table's partition
        value = wanted.get(table.hash_key_attr)
        return None if value is None or len(wanted) != 1 else _candidates(table, value, None, None)
    attributes = dict(_gsi_shape(table)).get(index_name)
    if attributes is None or set(wanted) != set(attributes):
        return None  # an unknown index or another kind of condition: moto says what is wrong
    with _LOCK:
        index = _gsi_index(table)
        primaries = list(index.members.get((index_name, tuple(wanted[a] for a in attributes)), ()))
    found = [_stored(table, hash_key, range_key) for hash_key, range_key in primaries]
    return [item for item in found if item is not None]


def install() -> None:
    import inspect

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_mailroom_query_index", False):
        return
    all_items, query, put_item, delete_item = Table.all_items, Table.query, Table.put_item, Table.delete_item
    update_item, execute_statement = DynamoDBBackend.update_item, DynamoDBBackend.execute_statement
    query_signature = inspect.signature(query)

    def candidate_all_items(self: Any) -> Any:
        override = getattr(_query_candidates, "value", None)
        if override is not None and override[0] is self:
            return override[1]
        return all_items(self)

    def indexed_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = query_signature.bind(self, *args, **kwargs).arguments
        found = _candidates(
            self, bound.get("hash_key"), bound.get("index_name"), bound.get("hash_key_conditions")
        )
        if found is None:
            return query(self, *args, **kwargs)
        _query_candidates.value = (self, found)  # what ``all_items`` answers moto's query, on this thread
        try:
            return query(self, *args, **kwargs)
        finally:
            _query_candidates.value = None

    def indexed_put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = put_item(self, *args, **kwargs)
        reindex(self, item.hash_key, item.range_key)
        return item

    def indexed_delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return delete_item(self, hash_key, range_key)
        finally:
            reindex(self, hash_key, range_key)

    def indexed_update_item(
        self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:  # an update changes the item in place, even when it then fails
            table = self.tables.get(table_name)
            if table is not None and table.hash_key_attr in key:
                range_value = key.get(table.range_key_attr) if table.range_key_attr else None
                reindex(
                    table,
                    DynamoType(key[table.hash_key_attr]),
                    DynamoType(range_value) if range_value is not None else None,
                )

    def reindexed_execute_statement(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute_statement(self, *args, **kwargs)
        finally:  # PartiQL writes items its own way: indexes are rebuilt when next needed
            with _LOCK:
                for table in self.tables.values():
                    table.__dict__.pop("_mailroom_gsi_index", None)

    Table.all_items = candidate_all_items  # type: ignore[method-assign]
    Table.query = indexed_query  # type: ignore[method-assign]
    Table.put_item = indexed_put_item  # type: ignore[method-assign]
    Table.delete_item = indexed_delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = indexed_update_item  # type: ignore[method-assign]
    DynamoDBBackend.execute_statement = reindexed_execute_statement  # type: ignore[method-assign]
    Table._mailroom_query_index = True  # type: ignore[attr-defined]

"""DynamoDB Streams: records already read can be dropped; shard iterators expire.

moto keeps every stream record for the life of the process, and its transactions deep-copy the
whole table, stream included: with records piling up, every transaction gets slower. Records the
local pollers have read are dropped (``trim_stream``; AWS keeps them 24 hours, which nothing here
relies on). moto numbers a record by the stream's length, so dropping records moves the stream's
starting sequence number along with them, under one lock (``LOCK``) shared with appending, reading
and copying. moto also keeps every shard iterator ever issued (AWS expires them after 15 minutes);
only the newest ones are kept.

Every append is also counted (``APPENDS``): the local pollers sleep until a record arrives instead
of reading an empty stream four times a second (most of an idle stack's CPU before).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from datetime import UTC, datetime
from typing import Any

LOCK = threading.RLock()
MAX_SHARD_ITERATORS = 1000


class AppendSignal:
    """How many records were appended to any emulated stream, and a wait for the next one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0

    def count(self) -> int:
        with self._changed:
            return self._count

    def appended(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float, stop: threading.Event) -> None:
        """Until an append after ``seen``, ``stop`` is set (then call ``wake``), or ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._count != seen or stop.is_set(), timeout)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


APPENDS = AppendSignal()


def trim_stream(table_name: str, through_sequence: int, *, account_id: str, region: str) -> int:
    """Drop the stream records of ``table_name`` up to ``through_sequence``; how many were dropped."""
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[account_id][region].tables.get(table_name)
    shard = getattr(table, "stream_shard", None)
    if shard is None:
        return 0
    with LOCK:
        count = max(0, min(len(shard.items), through_sequence - int(shard.starting_sequence_number) + 1))
        if count:
            del shard.items[:count]
            shard.starting_sequence_number += count
        return count


def read_stream(
    table_name: str, after: int | None, limit: int, *, account_id: str, region: str
) -> list[dict[str, Any]]:
    """Up to ``limit`` stream records of ``table_name`` after sequence number ``after`` (None: from
    the oldest kept), as GetRecords puts them on the wire (attribute values in DynamoDB JSON), but
    read from the emulator's memory: a GetRecords call through botocore and moto's response
    serialiser cost more CPU than the function the records are for (every poller reads every write).
    """
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[account_id][region].tables.get(table_name)
    shard = getattr(table, "stream_shard", None)  # replaced when moto rolls back a transaction
    if shard is None:
        return []
    with LOCK:
        first = int(shard.starting_sequence_number)
        start = first if after is None else max(after + 1, first)  # trimmed records: from the horizon
        records = [record.to_json() for record in shard.items[start - first : start - first + limit]]
        # Through JSON: the caller gets its own copy, in the wire's types (base64 for binary values,
        # epoch seconds for the creation time: what Lambda's event carries).
        return json.loads(json.dumps(records, default=_wire))  # type: ignore[no-any-return]


def _wire(value: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if isinstance(value, datetime):  # moto's clock is naive UTC
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, DynamoType):
        return value.to_regular_json()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not in a stream record: {type(value).__name__}")


def stream_end(table: Any) -> int | None:
    """The sequence number the table's next stream record gets (None: the table has no stream)."""
    shard = getattr(table, "stream_shard", None)
    return None if shard is None else len(shard.items) + int(shard.starting_sequence_number)


def install() -> None:
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if getattr(StreamShard, "_mailroom_locked", False):
        return
    add, get = StreamShard.add, StreamShard.get

    def locked_add(self: Any, old: Any, new: Any) -> None:
        with LOCK:
            add(self, old, new)
        APPENDS.appended()

    def locked_get(self: Any, start: int, quantity: int) -> Any:
        with LOCK:
            # An iterator from before a trim starts at the oldest record left (AWS: the trim horizon).
            return get(self, max(start, self.starting_sequence_number), quantity)

    def locked_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        # Transactions copy the table to roll back to: the copy must not catch a trim half-done.
        with LOCK:
            copied = self.__class__.__new__(self.__class__)
            memo[id(self)] = copied
            for name, value in self.__dict__.items():
                setattr(copied, name, copy.deepcopy(value, memo))
            return copied

    StreamShard.add = locked_add  # type: ignore[method-assign]
    StreamShard.get = locked_get  # type: ignore[method-assign]
    StreamShard.__deepcopy__ = locked_deepcopy  # type: ignore[attr-defined]
    StreamShard._mailroom_locked = True  # type: ignore[attr-defined]

    get_shard_iterator = DynamoDBStreamsBackend.get_shard_iterator
    get_records = DynamoDBStreamsBackend.get_records

    def expire(backend: Any) -> None:
        excess = len(backend.shard_iterators) - MAX_SHARD_ITERATORS
        for arn in list(backend.shard_iterators)[: max(0, excess)]:
            backend.shard_iterators.pop(arn, None)

    def bounded_get_shard_iterator(self: Any, *args: Any, **kwargs: Any) -> Any:
        expire(self)
        return get_shard_iterator(self, *args, **kwargs)

    def bounded_get_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = get_records(self, *args, **kwargs)
        expire(self)
        return result

    DynamoDBStreamsBackend.get_shard_iterator = bounded_get_shard_iterator  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = bounded_get_records  # type: ignore[method-assign]

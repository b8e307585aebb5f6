"""Operations moto does not implement yet that Mailroom calls, added to the emulator; bounds on what
its DynamoDB Streams keep (records already read, old shard iterators); and two fixes of moto's speed
(a linear SQS receive, a server that does not list its package on every request). SES v2 sends keep
the configuration set and tags moto drops, and are reported to listeners (``add_send_listener``:
the local stack delivers what SES "sends", see local/outbound.py).

Production code calls the real AWS APIs; these teach the local emulator to answer them the way AWS
does, so neither the code nor the tests carry local special cases. ``install()`` is idempotent and
must run before moto serves requests (the local stack and the test fixtures call it).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def _put_email_identity_dkim_signing_attributes(self: Any) -> str:
    """SES v2 PutEmailIdentityDkimSigningAttributes (BYODKIM key rotation)."""
    from moto.ses.exceptions import NotFoundException

    name = self._get_param("EmailIdentity")
    origin = self._get_param("SigningAttributesOrigin") or "AWS_SES"
    attributes = self._get_param("SigningAttributes") or {}
    identity = self.sesv2_backend.core_backend.email_identities.get(name)
    if identity is None:
        raise NotFoundException(f"Email identity {name} does not exist.")
    identity.dkim_signing_attributes = {**attributes, "SigningAttributesOrigin": origin}
    identity.dkim_attributes.update(
        {
            "SigningEnabled": True,
            "Status": "PENDING",
            "SigningAttributesOrigin": origin,
            "LastKeyGenerationTimestamp": time.time(),
        }
    )
    if attributes.get("DomainSigningSelector"):
        identity.dkim_attributes["Tokens"] = [attributes["DomainSigningSelector"]]
    return json.dumps({"DkimStatus": "PENDING", "DkimTokens": identity.dkim_attributes.get("Tokens", [])})


# --- DynamoDB Streams: records already read can be dropped; iterators expire -----------------------
#
# moto keeps every stream record for the life of the process, and its transactions deep-copy the
# whole table, stream included: with records piling up, every transaction gets slower. Records the
# local pollers have read are dropped (``trim_stream``; AWS keeps them 24 hours, which nothing here
# relies on). moto numbers a record by the stream's length, so dropping records moves the stream's
# starting sequence number along with them, under one lock shared with appending, reading and
# copying. moto also keeps every shard iterator ever issued (AWS expires them after 15 minutes);
# only the newest ones are kept.

_stream_lock = threading.RLock()
MAX_SHARD_ITERATORS = 1000


def trim_stream(table_name: str, through_sequence: int, *, account_id: str, region: str) -> int:
    """Drop the stream records of ``table_name`` up to ``through_sequence``; how many were dropped."""
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[account_id][region].tables.get(table_name)
    shard = getattr(table, "stream_shard", None)
    if shard is None:
        return 0
    with _stream_lock:
        count = max(0, min(len(shard.items), through_sequence - int(shard.starting_sequence_number) + 1))
        if count:
            del shard.items[:count]
            shard.starting_sequence_number += count
        return count


def _install_stream_retention() -> None:
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if getattr(StreamShard, "_mailroom_locked", False):
        return
    add, get = StreamShard.add, StreamShard.get

    def locked_add(self: Any, old: Any, new: Any) -> None:
        with _stream_lock:
            add(self, old, new)

    def locked_get(self: Any, start: int, quantity: int) -> Any:
        with _stream_lock:
            # An iterator from before a trim starts at the oldest record left (AWS: the trim horizon).
            return get(self, max(start, self.starting_sequence_number), quantity)

    def locked_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        # Transactions copy the table to roll back to: the copy must not catch a trim half-done.
        with _stream_lock:
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


# --- DynamoDB transactions: roll back the items a transaction names, not a copy of the table ------
#
# moto deep-copies every table a TransactWriteItems names before applying it, to restore on
# cancellation: each transaction costs O(table size), so storing N messages (one transaction each)
# costs O(N^2) and an 8,000-message import slows down as it goes. The same rollback, from copies of
# just the items the transaction names (each item at most once: moto refuses a transaction naming
# one twice) and of the stream's length. Transactions run one at a time, as moto's whole-table
# restore already assumed.

_transaction_lock = threading.RLock()


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


def _stream_end(table: Any) -> int | None:
    shard = getattr(table, "stream_shard", None)
    return None if shard is None else len(shard.items) + int(shard.starting_sequence_number)


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
        _reindex(entry.table, entry.hash_key, entry.range_key)
    # A cancelled transaction leaves no stream records (as on AWS).
    for table, end in stream_ends.values():
        now = _stream_end(table)
        if end is not None and now is not None and now > end:
            records = table.stream_shard.items
            del records[max(0, len(records) - (now - end)) :]


def _install_transaction_rollback() -> None:
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_mailroom_item_rollback", False):
        return
    dynamodb_models.copy = _TablesNotCopied()  # type: ignore[attr-defined,assignment]
    transact_write_items = DynamoDBBackend.transact_write_items

    def item_rollback_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        # The stream lock is held throughout so that the records a rollback removes are this
        # transaction's (another request's write waits to append its record).
        with _transaction_lock, _stream_lock:
            saved = _saved_items(self, transact_items)
            stream_ends = {id(s.table): (s.table, _stream_end(s.table)) for s in saved}
            try:
                transact_write_items(self, transact_items)
            except Exception:
                _roll_back(saved, stream_ends)
                raise

    DynamoDBBackend.transact_write_items = item_rollback_transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend._mailroom_item_rollback = True  # type: ignore[attr-defined]


# --- DynamoDB queries: the partition or the index entry, not every item of the table, sorted ---------
#
# moto answers every Query by sorting every item of the table (``Table.all_items``) and then testing
# each against the key condition: O(table size x log) per query, so storing N messages (a few GSI
# queries each: duplicate check, thread lookup) costs O(N^2 log N) and an 8,000-message import
# spent most of moto's time sorting. A query on the table now looks at its partition only, and a
# query on a global secondary index at the items of an index of GSI hash key -> primary keys kept
# beside the table (built on the first such query, then updated by every write: put, delete,
# update, and a transaction's rollback). moto still applies its own key conditions, sort order,
# filters and pages to those candidates, so the answer is the same. Like a GSI on AWS, the index
# catches up with a write at the end of that write's request, not within it.

_index_lock = threading.RLock()
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
    with _index_lock:
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


def _reindex(table: Any, hash_key: Any, range_key: Any) -> None:
    """After a write to one item: its index entries follow (if the table's index is built yet)."""
    with _index_lock:
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
    with _index_lock:
        index = _gsi_index(table)
        primaries = list(index.members.get((index_name, tuple(wanted[a] for a in attributes)), ()))
    found = [_stored(table, hash_key, range_key) for hash_key, range_key in primaries]
    return [item for item in found if item is not None]


def _install_query_index() -> None:
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
        _reindex(self, item.hash_key, item.range_key)
        return item

    def indexed_delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return delete_item(self, hash_key, range_key)
        finally:
            _reindex(self, hash_key, range_key)

    def indexed_update_item(
        self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:  # an update changes the item in place, even when it then fails
            table = self.tables.get(table_name)
            if table is not None and table.hash_key_attr in key:
                range_value = key.get(table.range_key_attr) if table.range_key_attr else None
                _reindex(
                    table,
                    DynamoType(key[table.hash_key_attr]),
                    DynamoType(range_value) if range_value is not None else None,
                )

    def reindexed_execute_statement(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute_statement(self, *args, **kwargs)
        finally:  # PartiQL writes items its own way: indexes are rebuilt when next needed
            with _index_lock:
                for table in self.tables.values():
                    table.__dict__.pop("_mailroom_gsi_index", None)

    Table.all_items = candidate_all_items  # type: ignore[method-assign]
    Table.query = indexed_query  # type: ignore[method-assign]
    Table.put_item = indexed_put_item  # type: ignore[method-assign]
    Table.delete_item = indexed_delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = indexed_update_item  # type: ignore[method-assign]
    DynamoDBBackend.execute_statement = reindexed_execute_statement  # type: ignore[method-assign]
    Table._mailroom_query_index = True  # type: ignore[attr-defined]


def _install_sqs_retention_check() -> None:
    """moto checks each received message's retention period by computing every attribute of its
    queue, which counts the queue's messages: receiving gets quadratic in the queue's length (a few
    hundred queued webhook deliveries took seconds per receive). Same answer, from the one attribute."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_mailroom_retention", False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    SQSBackend._mailroom_retention = True  # type: ignore[attr-defined]


def _install_module_list_cache() -> None:
    """moto's server lists its own package folder (a listdir and a stat per entry), under a lock, on
    every request to find the service: most of its time went there under load. The list never
    changes while it runs."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "_mailroom_cached", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def cached() -> tuple[str, ...]:
        return modules

    cached._mailroom_cached = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = cached


# --- SES v2 SendEmail: what moto drops, kept; listeners told of every send ---------------------------


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One accepted SES v2 ``SendEmail``, as the request gave it."""

    message_id: str
    from_address: str | None
    recipients: list[str]  # the envelope: Destination's To, Cc and Bcc addresses
    raw: bytes | None  # raw MIME (``Content.Raw``); None for simple or templated content
    configuration_set: str | None
    tags: dict[str, str] = field(default_factory=dict)
    account_id: str = ""
    region: str = ""


SendListener = Callable[[SentEmail], object]
_send_listeners: list[SendListener] = []
_listeners_lock = threading.Lock()


def add_send_listener(listener: SendListener) -> None:
    """Call ``listener`` after every accepted send, on moto's request thread: it must only hand the
    work to a thread of its own and return."""
    with _listeners_lock:
        _send_listeners.append(listener)


def remove_send_listener(listener: SendListener) -> None:
    with _listeners_lock:
        if listener in _send_listeners:
            _send_listeners.remove(listener)


def _install_sesv2_send_record() -> None:
    """moto accepts ``ConfigurationSetName`` and ``EmailTags`` and forgets them; SES acts on both (the
    set's event destinations publish the send's events, carrying its tags). They are kept on moto's
    stored message (``configuration_set_name``, ``email_tags``) and passed to the listeners."""
    from moto.sesv2.responses import SESV2Response

    if getattr(SESV2Response, "_mailroom_recorded", False):
        return
    send_email = SESV2Response.send_email

    def recorded_send_email(self: Any) -> str:
        answer: str = send_email(self)
        params = json.loads(self.body or "{}")
        destination = params.get("Destination") or {}
        raw = ((params.get("Content") or {}).get("Raw") or {}).get("Data")
        sent = SentEmail(
            message_id=str(json.loads(answer)["MessageId"]),
            from_address=params.get("FromEmailAddress"),
            recipients=[
                str(a)
                for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
                for a in destination.get(kind) or []
            ],
            raw=base64.b64decode(raw) if raw else None,
            configuration_set=params.get("ConfigurationSetName"),
            tags={str(t["Name"]): str(t["Value"]) for t in params.get("EmailTags") or []},
            account_id=self.current_account,
            region=self.region,
        )
        for message in reversed(self.sesv2_backend.core_backend.sent_messages):
            if message.id == sent.message_id:
                message.configuration_set_name = sent.configuration_set
                message.email_tags = dict(sent.tags)
                break
        with _listeners_lock:
            listeners = list(_send_listeners)
        for listener in listeners:
            try:
                listener(sent)
            except Exception:
                # SES has accepted the message whatever happens after: a listener never fails a send.
                log.exception("SES send listener failed for %s", sent.message_id)
        return answer

    SESV2Response.send_email = recorded_send_email  # type: ignore[method-assign]
    SESV2Response._mailroom_recorded = True  # type: ignore[attr-defined]


def install() -> None:
    from moto.sesv2.responses import SESV2Response

    if not hasattr(SESV2Response, "put_email_identity_dkim_signing_attributes"):
        SESV2Response.put_email_identity_dkim_signing_attributes = (  # type: ignore[attr-defined]
            _put_email_identity_dkim_signing_attributes
        )
    _install_stream_retention()
    _install_transaction_rollback()
    _install_query_index()
    _install_sqs_retention_check()
    _install_module_list_cache()
    _install_sesv2_send_record()

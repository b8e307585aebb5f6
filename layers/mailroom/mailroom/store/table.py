"""The single DynamoDB table: typed items in and out, conditional writes, and paginated queries.

Items are plain dicts of Python values; this module converts them to and from DynamoDB's wire
format with boto3's own (de)serializers, which keeps the low-level client (cheaper to create than a
resource) without hand-written type juggling.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store.errors import Contended, InvalidRequest, Throttled

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

TRANSACT_ATTEMPTS = 6
TRANSACT_BACKOFF_BASE = 0.02  # seconds; full jitter, doubling
TRANSACT_BACKOFF_CAP = 1.0

INDEX_KEYS: dict[str | None, tuple[str, str]] = {
    None: ("PK", "SK"),
    "GSI1": ("GSI1PK", "GSI1SK"),
    "GSI2": ("GSI2PK", "GSI2SK"),
    "GSI3": ("GSI3PK", "GSI3SK"),
}
MAX_FILTERED_READS = 5


class InvalidCursor(ValueError):
    """A pagination cursor that is malformed or was made for another query."""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, Binary):
        return bytes(value.value)  # type: ignore[attr-defined]  # the stubs omit Binary.value
    return value


_MAX_EXACT_INT = 10**38  # DynamoDB numbers have 38 significant digits; larger ones go to boto3 to refuse


def _wire_value(value: Any) -> Any:
    # The common scalars directly, as boto3 writes them: its serializer tries a chain of type tests
    # per value, which over a message item (hundreds of header strings) was a noticeable part of
    # inbound's own time.
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -_MAX_EXACT_INT < value < _MAX_EXACT_INT:
        return {"N": str(value)}
    if isinstance(value, float):
        value = Decimal(str(value))
    elif isinstance(value, dict):
        # Inside maps None is kept (as NULL) so nested shapes round-trip exactly.
        return {"M": {k: _wire_value(v) for k, v in value.items()}}
    elif isinstance(value, list):
        return {"L": [_wire_value(v) for v in value]}
    return _serializer.serialize(value)


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB wire format. Top-level ``None`` attributes are left out (absent)."""
    return {k: _wire_value(v) for k, v in item.items() if v is not None}


def deserialize(wire: Mapping[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in wire.items()}


def values(**named: Any) -> dict[str, Any]:
    """``ExpressionAttributeValues`` from keyword arguments: ``values(now=1)`` → ``{":now": {"N": "1"}}``."""
    return {f":{k}": _wire_value(v) for k, v in named.items()}


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Item]
    number: int
    next_cursor: str | None
    prev_cursor: str | None


def _encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), dict):
        raise InvalidCursor("cursor is not valid")
    return payload


def _key_condition(
    partition: str, index: str | None, sk_between: tuple[str, str] | None, sk_prefix: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """KeyConditionExpression, names and values for a partition and an optional sort-key range."""
    pk_name, sk_name = INDEX_KEYS[index]
    condition, names = "#pk = :pk", {"#pk": pk_name}
    expression_values: dict[str, Any] = {":pk": {"S": partition}}
    if sk_between:
        condition += " AND #sk BETWEEN :lo AND :hi"
        names["#sk"] = sk_name
        expression_values |= {":lo": {"S": sk_between[0]}, ":hi": {"S": sk_between[1]}}
    elif sk_prefix:
        condition += " AND begins_with(#sk, :prefix)"
        names["#sk"] = sk_name
        expression_values[":prefix"] = {"S": sk_prefix}
    return condition, names, expression_values


class Table:
    """The state table. Every method is one DynamoDB request (``query_page`` included)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or get_settings().table_name

    @property
    def client(self) -> Any:
        return aws.dynamodb()

    def get(self, pk: str, sk: str, *, consistent: bool = True) -> Item | None:
        response = self.client.get_item(
            TableName=self.name, Key=serialize({"PK": pk, "SK": sk}), ConsistentRead=consistent
        )
        wire = response.get("Item")
        return deserialize(wire) if wire else None

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        expression_values: dict[str, Any] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if expression_values:
            kwargs["ExpressionAttributeValues"] = expression_values
        self.client.put_item(**kwargs)

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        expression_values: dict[str, Any] | None = None,
        return_values: str = "ALL_NEW",
    ) -> Item:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize({"PK": pk, "SK": sk}),
            "UpdateExpression": expression,
            "ReturnValues": return_values,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if expression_values:
            kwargs["ExpressionAttributeValues"] = expression_values
        response = self.client.update_item(**kwargs)
        return deserialize(response.get("Attributes", {}))

    def delete(
        self, pk: str, sk: str, *, condition: str | None = None, return_old: bool = False
    ) -> Item | None:
        kwargs: dict[str, Any] = {"TableName": self.name, "Key": serialize({"PK": pk, "SK": sk})}
        if condition:
            kwargs["ConditionExpression"] = condition
        if return_old:
            kwargs["ReturnValues"] = "ALL_OLD"
        response = self.client.delete_item(**kwargs)
        old = response.get("Attributes")
        return deserialize(old) if old else None

    def transact(self, operations: Sequence[dict[str, Any]]) -> None:
        """All-or-nothing writes: TransactWriteItems entries, each given this table's name.

        A transaction cancelled only because another one was writing the same item at that moment
        (``TransactionConflict``: two messages stored at once both move their mailbox's counters) or
        by throttling wrote nothing, and is tried again after a jittered backoff; botocore's own
        retries do not cover it. A failed condition is never retried: it raises ``ConditionFailed``.
        """
        items = []
        for operation in operations:
            ((kind, body),) = operation.items()
            items.append({kind: {"TableName": self.name, **body}})
        for attempt in range(TRANSACT_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=items)
                return
            except (Contended, Throttled):
                if attempt == TRANSACT_ATTEMPTS - 1:
                    raise
                backoff = min(TRANSACT_BACKOFF_CAP, TRANSACT_BACKOFF_BASE * 2**attempt)
                time.sleep(random.uniform(0, backoff))  # noqa: S311 - jitter, not a secret

    def _query_from(self, kwargs: dict[str, Any], start_key: dict[str, Any] | None) -> Any:
        """One Query page from ``start_key`` (a cursor's key): a key DynamoDB refuses is a cursor
        made for another listing."""
        if start_key:
            kwargs["ExclusiveStartKey"] = serialize(start_key)
        try:
            return self.client.query(**kwargs)
        except InvalidRequest as exc:
            if start_key:
                raise InvalidCursor("cursor is not valid for this listing") from exc
            raise

    def query_page(
        self,
        *,
        partition: str,
        per_page: int,
        cursor: str | None = None,
        index: str | None = None,
        sk_between: tuple[str, str] | None = None,
        sk_prefix: str | None = None,
        newest_first: bool = False,
        filter_expression: tuple[str, dict[str, str], dict[str, Any]] | None = None,
    ) -> Page:
        """One page of a partition, in sort-key order, following an opaque cursor.

        A cursor carries the page number, a direction and the key to start after, so both "next"
        and "prev" cost exactly one Query whatever the collection's size ("prev" reads backwards
        from the first item of the current page). A cursor from another partition is refused.

        With ``filter_expression`` (expression, names, values) the page is filled from up to
        ``MAX_FILTERED_READS`` Queries (a filter is applied after reading, so a sparse match needs
        more reads); such pages link forward only.
        """
        if filter_expression is not None:
            return self._filtered_page(
                partition=partition,
                per_page=per_page,
                cursor=cursor,
                index=index,
                sk_between=sk_between,
                sk_prefix=sk_prefix,
                newest_first=newest_first,
                filter_expression=filter_expression,
            )
        pk_name, sk_name = INDEX_KEYS[index]
        number, direction, start_key = 1, "next", None
        if cursor:
            payload = _decode_cursor(cursor)
            start_key = payload["k"]
            number = int(payload.get("p", 1))
            direction = payload.get("d", "next")
            if start_key.get(pk_name) != partition or direction not in ("next", "prev") or number < 1:
                raise InvalidCursor("cursor belongs to another listing")
        forward = not newest_first if direction == "next" else newest_first

        condition, names, expression_values = _key_condition(partition, index, sk_between, sk_prefix)

        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": expression_values,
            # One extra item tells whether another page exists without a second request.
            "Limit": per_page + 1,
            "ScanIndexForward": forward,
        }
        if index:
            kwargs["IndexName"] = index
        response = self._query_from(kwargs, start_key)
        items = [deserialize(w) for w in response.get("Items", [])]
        # A Query stops at 1 MB of items read: a page of large items can end short of per_page with
        # more to come (LastEvaluatedKey), and must still link to the rest.
        more = len(items) > per_page or bool(items and response.get("LastEvaluatedKey"))
        items = items[:per_page]
        if direction == "prev":
            items.reverse()

        key_names = {"PK", "SK", pk_name, sk_name}

        def key_of(item: Item) -> dict[str, Any]:
            return {k: item[k] for k in key_names if k in item}

        has_next = more if direction == "next" else True
        has_prev = number > 1
        next_cursor = prev_cursor = None
        if items and has_next:
            next_cursor = _encode_cursor({"k": key_of(items[-1]), "p": number + 1, "d": "next"})
        if items and has_prev:
            prev_cursor = _encode_cursor({"k": key_of(items[0]), "p": number - 1, "d": "prev"})
        return Page(items=items, number=number, next_cursor=next_cursor, prev_cursor=prev_cursor)

    def _filtered_page(
        self,
        *,
        partition: str,
        per_page: int,
        cursor: str | None,
        index: str | None,
        sk_between: tuple[str, str] | None,
        sk_prefix: str | None,
        newest_first: bool,
        filter_expression: tuple[str, dict[str, str], dict[str, Any]],
    ) -> Page:
        pk_name, sk_name = INDEX_KEYS[index]
        number, start_key = 1, None
        if cursor:
            payload = _decode_cursor(cursor)
            start_key, number = payload["k"], int(payload.get("p", 1))
            if start_key.get(pk_name) != partition or payload.get("d") != "filtered" or number < 1:
                raise InvalidCursor("cursor belongs to another listing")
        expression, filter_names, filter_values = filter_expression
        condition, names, expression_values = _key_condition(partition, index, sk_between, sk_prefix)
        names |= filter_names
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "FilterExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {**expression_values, **filter_values},
            "Limit": max(per_page * 2, 50),
            "ScanIndexForward": not newest_first,
        }
        if index:
            kwargs["IndexName"] = index
        items: list[Item] = []
        resume: dict[str, Any] | None = None
        key_names = {"PK", "SK", pk_name, sk_name}
        for _ in range(MAX_FILTERED_READS):
            response = self._query_from(kwargs, start_key)
            wires = response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            filled = False
            for position, wire in enumerate(wires):
                items.append(deserialize(wire))
                if len(items) == per_page:
                    filled = True
                    more = position < len(wires) - 1 or last is not None
                    # Resume after the last item returned: more may match beyond it.
                    resume = {k: items[-1][k] for k in key_names if k in items[-1]} if more else None
                    break
            if filled:
                break
            if last is None:
                resume = None
                break
            # Out of reads with the partition not exhausted: the next page resumes from here.
            start_key = resume = deserialize(last)
        next_cursor = _encode_cursor({"k": resume, "p": number + 1, "d": "filtered"}) if resume else None
        return Page(items=items, number=number, next_cursor=next_cursor, prev_cursor=None)

    def query_window(
        self,
        *,
        partition: str,
        offset: int,
        limit: int,
        index: str | None = None,
        sk_prefix: str | None = None,
        newest_first: bool = False,
    ) -> list[Item]:
        """Items ``offset`` to ``offset + limit`` of a partition in sort-key order: numbered pages
        (``/api/v0``), where no cursor says where a page starts.

        The first ``offset`` items are skipped with key-only Queries (``ProjectionExpression`` of
        the keys), so they cost no transfer or deserialization; DynamoDB still bills a Query by the
        size of the items it reads (eventually consistent: 0.5 RCU per 4 KB), and returns at most
        1 MB per request. Page ``p`` therefore costs about ``offset * item size / 1 MB`` Queries
        plus one for the page itself, instead of reading and decoding every earlier item."""
        pk_name, sk_name = INDEX_KEYS[index]
        condition, names, expression_values = _key_condition(partition, index, None, sk_prefix)
        base: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": dict(names),
            "ExpressionAttributeValues": expression_values,
            "ScanIndexForward": not newest_first,
        }
        if index:
            base["IndexName"] = index
        start_key: dict[str, Any] | None = None
        skipped = 0
        key_names = sorted({"PK", "SK", pk_name, sk_name})
        while skipped < offset:
            key_placeholders = {f"#k{i}": name for i, name in enumerate(key_names)}
            kwargs = {
                **base,
                "ExpressionAttributeNames": {**base["ExpressionAttributeNames"], **key_placeholders},
                "ProjectionExpression": ", ".join(key_placeholders),
                "Limit": offset - skipped,
            }
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            response = self.client.query(**kwargs)
            wires = response.get("Items", [])
            skipped += len(wires)
            if skipped >= offset and wires:
                start_key = wires[-1]  # keys only: exactly an ExclusiveStartKey
                break
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                return []  # the partition ends before the window starts
        items: list[Item] = []
        while len(items) < limit:
            kwargs = {**base, "Limit": limit - len(items)}
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            response = self.client.query(**kwargs)
            items += [deserialize(w) for w in response.get("Items", [])]
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                break
        return items[:limit]

    def query_one(self, *, partition: str, index: str | None = None) -> Item | None:
        pk_name, _ = INDEX_KEYS[index]
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": pk_name},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "Limit": 1,
        }
        if index:
            kwargs["IndexName"] = index
        items = self.client.query(**kwargs).get("Items", [])
        return deserialize(items[0]) if items else None

    def batch_get(self, keys: Sequence[tuple[str, str]], *, consistent: bool = True) -> list[Item]:
        """The items that exist among ``keys`` (any order), with BatchGetItem: one request per 100
        keys, plus one per round of ``UnprocessedKeys`` (retried with a short backoff)."""
        import time

        unique = list(dict.fromkeys(keys))
        found: list[Item] = []
        for start in range(0, len(unique), 100):
            pending: dict[str, Any] = {
                self.name: {
                    "Keys": [serialize({"PK": pk, "SK": sk}) for pk, sk in unique[start : start + 100]],
                    "ConsistentRead": consistent,
                }
            }
            for attempt in range(8):
                response = self.client.batch_get_item(RequestItems=pending)
                found += [deserialize(w) for w in response.get("Responses", {}).get(self.name, [])]
                pending = dict(response.get("UnprocessedKeys") or {})
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("BatchGetItem left keys unprocessed after 8 attempts")
        return found

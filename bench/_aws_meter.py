"""What a unit of work spends in AWS, counted from the requests the code under test makes.

Every API call of every boto3 client in this process passes through ``BaseClient._make_api_call``;
while a ``Meter`` is installed it sees the request's parameters and the parsed response, so it
records, besides the call itself, the billable quantities AWS derives from them:

* DynamoDB request units, by DynamoDB's published rules: a write unit per 1 KB of an item written,
  a read unit per 4 KB read (half for an eventually consistent read; a Query sums the bytes of the
  items it returns before rounding), twice that inside a transaction. The size of an item is the
  bytes of its attribute names and values. An UpdateItem, DeleteItem or ConditionCheck does not
  show the stored item, so it counts as the minimum, one unit (two in a transaction): a floor for
  items over 1 KB.
* S3 requests by price tier (PUT, COPY, POST, LIST; GET and the rest; DELETE is free) and the
  bytes PUT (what a message adds to storage).
* SES recipients of each send (SES bills per recipient).
* The bytes of DynamoDB items Put (what a message adds to the table's storage).

Calls made while no unit is being measured (a bench's setup) are not recorded.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

S3_PUT_TIER = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
    }
)
S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})


@dataclass
class Tally:
    """The AWS requests of one or more units of work, and what they are billed as."""

    calls: Counter[str] = field(default_factory=Counter)  # "service.Operation"
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    dynamodb_bytes_put: int = 0
    dynamodb_items_put: int = 0
    s3_put_tier: int = 0
    s3_get_tier: int = 0
    s3_bytes_put: int = 0
    ses_recipients: int = 0
    seconds_in_aws: float = 0.0

    def requests(self, service: str) -> int:
        return sum(n for name, n in self.calls.items() if name.startswith(f"{service}."))


def _value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value (low-level form), by DynamoDB's item size rules."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        digits = str(content).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(content) if isinstance(content, bytes | bytearray) else len(str(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in content)
    if kind == "NS":
        return sum(_value_size({"N": n}) for n in content)
    if kind == "BS":
        return sum(len(b) for b in content)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in content.items())
    return 0


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of a DynamoDB item in the low-level form (attribute names plus values)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def _read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2


def _write_units(size: int | None, *, transactional: bool = False) -> float:
    units = 1 if size is None else max(1, math.ceil(size / 1024))
    return 2.0 * units if transactional else float(units)


def dynamodb_units(
    operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
) -> tuple[float, float]:
    """(read units, write units) a DynamoDB call consumes on an on-demand table."""
    consistent = bool(params.get("ConsistentRead"))
    if operation == "GetItem":
        return _read_units(item_size(parsed.get("Item")), consistent=consistent), 0.0
    if operation == "BatchGetItem":
        reads = 0.0
        for table, request in params.get("RequestItems", {}).items():
            found = parsed.get("Responses", {}).get(table, [])
            sizes = [item_size(item) for item in found]
            missing = max(0, len(request.get("Keys", [])) - len(found))
            strong = bool(request.get("ConsistentRead"))
            reads += sum(_read_units(s, consistent=strong) for s in sizes)
            reads += missing * _read_units(0, consistent=strong)
        return reads, 0.0
    if operation in ("Query", "Scan"):
        size = sum(item_size(item) for item in parsed.get("Items", []))
        return _read_units(size, consistent=consistent), 0.0
    if operation == "TransactGetItems":
        found = parsed.get("Responses", [])
        return sum(
            _read_units(item_size(r.get("Item")), consistent=True, transactional=True) for r in found
        ), 0.0
    if operation == "PutItem":
        return 0.0, _write_units(item_size(params.get("Item")))
    if operation in ("UpdateItem", "DeleteItem"):
        return 0.0, _write_units(None)
    if operation == "BatchWriteItem":
        writes = 0.0
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                put = request.get("PutRequest")
                writes += _write_units(item_size(put["Item"]) if put else None)
        return 0.0, writes
    if operation == "TransactWriteItems":
        writes = 0.0
        for entry in params.get("TransactItems", []):
            put = entry.get("Put")
            writes += _write_units(item_size(put["Item"]) if put else None, transactional=True)
        return 0.0, writes
    return 0.0, 0.0


def _items_put(operation: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if operation == "PutItem":
        return [params.get("Item", {})]
    if operation == "TransactWriteItems":
        return [e["Put"]["Item"] for e in params.get("TransactItems", []) if "Put" in e]
    if operation == "BatchWriteItem":
        return [
            r["PutRequest"]["Item"]
            for requests in params.get("RequestItems", {}).values()
            for r in requests
            if "PutRequest" in r
        ]
    return []


def _body_size(body: Any) -> int:
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    return 0  # a stream: not read here


def record(
    tally: Tally, service: str, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
) -> None:
    """Adds one API call and its billable quantities to ``tally``."""
    tally.calls[f"{service}.{operation}"] += 1
    if service == "dynamodb":
        reads, writes = dynamodb_units(operation, params, parsed)
        tally.dynamodb_read_units += reads
        tally.dynamodb_write_units += writes
        for item in _items_put(operation, params):
            tally.dynamodb_items_put += 1
            tally.dynamodb_bytes_put += item_size(item)
    elif service == "s3":
        if operation in S3_PUT_TIER:
            tally.s3_put_tier += 1
        elif operation not in S3_FREE:
            tally.s3_get_tier += 1
        if operation in ("PutObject", "UploadPart"):
            tally.s3_bytes_put += _body_size(params.get("Body"))
    elif service in ("sesv2", "ses") and operation in ("SendEmail", "SendRawEmail"):
        destination = params.get("Destination") or {}
        addresses = [
            a for kind in ("ToAddresses", "CcAddresses", "BccAddresses") for a in destination.get(kind, [])
        ]
        tally.ses_recipients += len(addresses) or len(params.get("Destinations", [])) or 1


class Meter:
    """Records the AWS calls made inside ``measuring()`` blocks (any thread) into their tally."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Tally | None = None

    @contextmanager
    def installed(self) -> Iterator[Meter]:
        from botocore.client import BaseClient

        client_class: Any = BaseClient  # the stubs do not declare the private method
        original = client_class._make_api_call
        meter = self

        def metered(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            tally = meter._current
            if tally is None:
                return original(client, operation_name, api_params)
            started = time.perf_counter()
            try:
                parsed = original(client, operation_name, api_params)
            except Exception:
                with meter._lock:
                    record(tally, client.meta.service_model.service_name, operation_name, api_params, {})
                    tally.seconds_in_aws += time.perf_counter() - started
                raise
            with meter._lock:
                record(tally, client.meta.service_model.service_name, operation_name, api_params, parsed)
                tally.seconds_in_aws += time.perf_counter() - started
            return parsed

        client_class._make_api_call = metered
        try:
            yield self
        finally:
            client_class._make_api_call = original

    @contextmanager
    def measuring(self, tally: Tally) -> Iterator[Tally]:
        previous, self._current = self._current, tally
        try:
            yield tally
        finally:
            self._current = previous

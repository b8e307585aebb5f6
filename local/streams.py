"""DynamoDB Streams event source mappings: read a table's stream, filter, invoke, checkpoint.

What is emulated (one poller per mapping; moto gives a table's stream one shard):

* ``StartingPosition``: ``TRIM_HORIZON`` or ``LATEST``. The local stack starts every poller at
  ``LATEST`` after restoring its snapshot: restored items are not changes, and the emulated stream
  starts empty at each start anyway.
* ``FilterCriteria``: a record is passed on when any filter's pattern matches it (Lambda's event
  filtering, on the record as the function receives it). Supported in patterns: nested objects,
  lists of exact values (strings, numbers, booleans, null), and the operators ``prefix``,
  ``suffix``, ``equals-ignore-case``, ``exists``, ``anything-but`` (a value or a list of values) and
  ``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=``, in pairs for ranges). Anything else is refused
  when the template is loaded. Records filtered out are skipped (and checkpointed), as on Lambda.
* ``BatchSize`` (default 100) and ``MaximumBatchingWindowInSeconds``.
* Failures: the function raising, or returning ``batchItemFailures`` (with
  ``ReportBatchItemFailures``; ``itemIdentifier`` is a record's sequence number, and an invalid
  list fails the whole batch). The shard waits (in order, as on Lambda) while the batch is retried
  from the first failed record, with a growing pause. ``BisectBatchOnFunctionError`` halves the
  batch after a function error (not counted as a retry); ``MaximumRetryAttempts`` (default -1:
  until it succeeds) then sends the batch's description to the ``DestinationConfig.OnFailure`` SQS
  queue, if any, and moves on.

Not emulated: ``MaximumRecordAgeInSeconds``, ``ParallelizationFactor``, tumbling windows, Kinesis.
Records every poller of a stream has read are dropped from the emulated stream (``trim``), so
moto's transactions, which copy the whole table (stream included), do not slow down as records pile
up over a long session.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from local.stack import StreamMapping

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.25
IDLE_WAIT_SECONDS = 5.0  # with an append signal: an idle poller reads again after this at the latest
READ_LIMIT = 1000
MAX_RETRY_PAUSE_SECONDS = 5.0
_OPERATORS = frozenset({"prefix", "suffix", "equals-ignore-case", "exists", "anything-but", "numeric"})
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class FilterPatternError(ValueError):
    """A filter pattern using something the local emulation does not support."""


class Invoker(Protocol):
    def invoke(self, ref: str, event: Any) -> Any: ...


class Appends(Protocol):
    """Counts appends to the emulated streams (local.moto_patches.streams.APPENDS in the stack)."""

    def count(self) -> int: ...
    def wait(self, seen: int, timeout: float, stop: threading.Event) -> None: ...
    def wake(self) -> None: ...


class StreamRead(Protocol):
    """Records of a table's stream after a sequence number (None: the oldest), in wire format
    (local.moto_patches.streams.read_stream in the stack)."""

    def __call__(self, table_name: str, after: int | None, limit: int) -> list[dict[str, Any]]: ...


# ----------------------------------------------------------------------------- filter patterns


def parse_pattern(text: str) -> dict[str, Any]:
    """A ``FilterCriteria`` pattern (a JSON string), checked for what ``matches`` supports."""
    try:
        pattern = json.loads(text)
    except ValueError as exc:
        raise FilterPatternError(f"filter pattern is not JSON: {text!r}") from exc
    if not isinstance(pattern, dict) or not pattern:
        raise FilterPatternError(f"a filter pattern is a non-empty JSON object: {text!r}")
    _check(pattern, path="")
    return pattern


def _check(pattern: dict[str, Any], *, path: str) -> None:
    for key, rule in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(rule, dict):
            _check(rule, path=where)
        elif isinstance(rule, list) and rule:
            for value in rule:
                if isinstance(value, dict):
                    _check_operator(value, where)
                elif isinstance(value, list):
                    raise FilterPatternError(f"{where}: nested lists are not a filter rule")
        else:
            raise FilterPatternError(f"{where}: a rule is an object or a non-empty list, got {rule!r}")


def _check_operator(rule: dict[str, Any], where: str) -> None:
    if len(rule) != 1 or next(iter(rule)) not in _OPERATORS:
        raise FilterPatternError(
            f"{where}: {rule!r} is not supported locally (supported: {', '.join(sorted(_OPERATORS))})"
        )
    ((name, arg),) = rule.items()
    if name == "numeric":
        if (
            not isinstance(arg, list)
            or len(arg) not in (2, 4)
            or any(op not in _NUMERIC_OPS for op in arg[::2])
        ):
            raise FilterPatternError(f"{where}: numeric takes [op, value] or [op, value, op, value]")
    elif name == "exists":
        if not isinstance(arg, bool):
            raise FilterPatternError(f"{where}: exists takes true or false")
    elif name == "anything-but":
        if isinstance(arg, dict):
            raise FilterPatternError(f"{where}: anything-but with an operator is not supported locally")
    elif not isinstance(arg, str):
        raise FilterPatternError(f"{where}: {name} takes a string")


_MISSING = object()


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """Does ``record`` match ``pattern`` (every key's rule holds)?"""
    if not isinstance(record, dict):
        return False
    for key, rule in pattern.items():
        value = record.get(key, _MISSING)
        if isinstance(rule, dict):
            if not matches(rule, value):
                return False
        elif not any(_value_matches(r, value) for r in rule):
            return False
    return True


def _value_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        ((name, arg),) = rule.items()
        if name == "exists":
            return (value is not _MISSING) is arg
    if value is _MISSING:
        return False
    if isinstance(value, list):  # a rule matches an array when it matches one of its elements
        return any(_value_matches(rule, v) for v in value)
    if not isinstance(rule, dict):
        return _equal(rule, value)
    ((name, arg),) = rule.items()
    if name == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == arg.lower()
    if name == "anything-but":
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_equal(e, value) for e in excluded)
    if name == "numeric":
        number = _number(value)
        if number is None:
            return False
        return all(
            _NUMERIC_OPS[op](number, float(bound)) for op, bound in zip(arg[::2], arg[1::2], strict=True)
        )
    return False


def _equal(rule: Any, value: Any) -> bool:
    if isinstance(rule, bool) or isinstance(value, bool) or rule is None or value is None:
        # Booleans and null match only themselves (true is not 1, as in JSON).
        return rule is value or (rule == value and type(rule) is type(value))
    if isinstance(rule, int | float):
        number = _number(value)
        return number is not None and number == float(rule)
    return isinstance(value, str) and value == rule


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


# ----------------------------------------------------------------------------- records


def lambda_record(record: dict[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A stream record (as GetRecords puts it on the wire) as a record of Lambda's DynamoDB event."""
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": record["dynamodb"],
        "eventSourceARN": stream_arn,
    }


def _sequence(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


# ----------------------------------------------------------------------------- the poller


class StreamPoller:
    """Reads one table's stream for one function, in order, one batch in flight at a time."""

    def __init__(
        self,
        mapping: StreamMapping,
        *,
        table_name: str,
        on_failure_queue_url: str | None = None,
        runtime: Invoker,
        dynamodb: Any,
        streams: Any,
        read: StreamRead,
        sqs: Any | None = None,
        region: str,
        starting_position: str | None = None,
        trim: Callable[[str, int], None] | None = None,
        retry_pause_seconds: float = 0.1,
        appends: Appends | None = None,
    ) -> None:
        self.mapping = mapping
        self.table_name = table_name
        self._on_failure_queue_url = on_failure_queue_url
        self._runtime = runtime
        self._dynamodb = dynamodb
        self._streams = streams
        self._read_records = read
        self._sqs = sqs
        self._region = region
        self._start = (starting_position or mapping.starting_position).upper()
        self._trim = trim
        self._retry_pause = retry_pause_seconds  # doubled after each failure, up to 5 s
        self._stream_arn: str | None = None
        self._shard_id: str | None = None
        self.checkpoint: int | None = None  # sequence number of the last record done with
        self._limit = mapping.batch_size
        self._failures = 0
        self._appends = appends
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"ddbstream-{mapping.function}-{mapping.event}", daemon=True
        )

    def start(self) -> None:
        self.open()
        self._thread.start()

    def stop(self, timeout: float = 35.0) -> None:
        self._stop.set()
        if self._appends is not None:
            self._appends.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def open(self) -> None:
        """Find the stream and fix the starting point (LATEST: after the last record there now)."""
        table = self._dynamodb.describe_table(TableName=self.table_name)["Table"]
        arn = table.get("LatestStreamArn")
        if not arn:
            raise RuntimeError(f"table {self.table_name} has no stream (StreamSpecification)")
        shards = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self._stream_arn, self._shard_id = arn, shards[0]["ShardId"]
        if self._start == "LATEST":
            # Iterators are re-made at each poll (moto replaces a table's stream when it rolls back a
            # transaction), so LATEST is pinned to a sequence number once, here.
            while records := self._read():
                self.checkpoint = _sequence(records[-1])
            self._trim_consumed()

    def _read(self) -> list[dict[str, Any]]:
        if not self._stream_arn or not self._shard_id:
            raise RuntimeError("the poller is not open")
        return self._read_records(self.table_name, self.checkpoint, READ_LIMIT)

    def poll_once(self) -> int:
        """Read, filter, invoke one batch, checkpoint. Returns how many records were passed on."""
        records = self._read()
        if not records:
            return 0
        deadline = time.monotonic() + self.mapping.batching_window_seconds
        batch, considered = self._batch(records)
        while (
            len(batch) < self._limit
            and time.monotonic() < deadline
            and not self._stop.is_set()
            and len(considered) == len(records)  # everything read so far fits: wait for more
        ):
            self._stop.wait(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
            more = self._read_after(_sequence(records[-1]))
            if not more:
                continue
            records += more
            batch, considered = self._batch(records)
        if not batch:
            self.checkpoint = _sequence(considered[-1])
            self._trim_consumed()
            return 0
        self._deliver(batch, considered)
        return len(batch)

    def _read_after(self, sequence: int) -> list[dict[str, Any]]:
        saved, self.checkpoint = self.checkpoint, sequence
        try:
            return self._read()
        finally:
            self.checkpoint = saved

    def _batch(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The matching records of one batch, and every record up to its last (filtered ones too)."""
        batch: list[dict[str, Any]] = []
        considered: list[dict[str, Any]] = []
        assert self._stream_arn
        for record in records:
            event_record = lambda_record(record, stream_arn=self._stream_arn, region=self._region)
            considered.append(record)
            if not self.mapping.filters or any(matches(p, event_record) for p in self.mapping.filters):
                batch.append(event_record)
                if len(batch) == self._limit:
                    break
        return batch, considered

    def _deliver(self, batch: list[dict[str, Any]], considered: list[dict[str, Any]]) -> None:
        function = self.mapping.function
        try:
            result = self._runtime.invoke(function, {"Records": batch})
        except Exception as exc:
            log.warning("%s: stream batch of %d failed (%s)", function, len(batch), exc)
            if self.mapping.bisect_on_error and len(batch) > 1:
                self._limit = max(1, len(batch) // 2)  # bisecting is not a retry
                return
            self._retry_or_give_up(batch, considered, None)
            return
        failed = self._failed_sequence(batch, result)
        if failed is None:
            self.checkpoint = _sequence(considered[-1])
            self._limit, self._failures = self.mapping.batch_size, 0
            self._trim_consumed()
            return
        log.info("%s: stream records from sequence %d failed; retrying from there", function, failed)
        self._retry_or_give_up(batch, considered, failed)

    def _failed_sequence(self, batch: list[dict[str, Any]], result: Any) -> int | None:
        """The first sequence number to retry from, or None if the whole batch succeeded."""
        first = int(batch[0]["dynamodb"]["SequenceNumber"])
        if not self.mapping.report_batch_item_failures or result is None:
            return None
        failures = result.get("batchItemFailures") if isinstance(result, dict) else "invalid"
        if not failures:
            return None
        known = {r["dynamodb"]["SequenceNumber"] for r in batch}
        numbers = []
        for failure in failures if isinstance(failures, list) else ["invalid"]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in known:
                log.error("invalid batchItemFailures entry %r: whole batch failed", failure)
                return first
            numbers.append(int(identifier))
        return min(numbers)

    def _retry_or_give_up(
        self, batch: list[dict[str, Any]], considered: list[dict[str, Any]], failed: int | None
    ) -> None:
        if failed is not None:
            done = [r for r in considered if _sequence(r) < failed]
            if done:
                self.checkpoint = _sequence(done[-1])
        self._failures += 1
        limit = self.mapping.maximum_retry_attempts
        if 0 <= limit < self._failures:
            self._give_up(batch, considered)
            return
        self._stop.wait(min(MAX_RETRY_PAUSE_SECONDS, self._retry_pause * 2**self._failures))

    def _give_up(self, batch: list[dict[str, Any]], considered: list[dict[str, Any]]) -> None:
        function = self.mapping.function
        log.error("%s: stream batch failed %d times; skipped", function, self._failures)
        if self._on_failure_queue_url and self._sqs is not None:
            self._sqs.send_message(
                QueueUrl=self._on_failure_queue_url,
                MessageBody=json.dumps(self._failure_record(batch)),
            )
        self.checkpoint = _sequence(considered[-1])
        self._limit, self._failures = self.mapping.batch_size, 0
        self._trim_consumed()

    def _failure_record(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        """What Lambda sends an on-failure destination for a stream batch: where it is, not its data."""
        created = [r["dynamodb"].get("ApproximateCreationDateTime") or 0 for r in batch]
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.mapping.function,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self._failures,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": self._shard_id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": datetime.fromtimestamp(min(created), UTC).isoformat(),
                "approximateArrivalOfLastRecord": datetime.fromtimestamp(max(created), UTC).isoformat(),
                "batchSize": len(batch),
                "streamArn": self._stream_arn,
            },
        }

    def _trim_consumed(self) -> None:
        if self._trim is not None and self.checkpoint is not None:
            self._trim(self.table_name, self.checkpoint)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                seen = self._appends.count() if self._appends is not None else 0
                before = self.checkpoint
                if self.poll_once() > 0 or self.checkpoint != before:  # more may be there already
                    continue
                # At most one read per interval while records keep coming (as before the signal)...
                self._stop.wait(POLL_INTERVAL_SECONDS)
                if self._appends is not None:
                    # ...and none while nothing is appended: an append counted after ``seen`` wakes
                    # the poller at once; the timeout is a backstop.
                    self._appends.wait(seen, IDLE_WAIT_SECONDS, self._stop)
            except Exception:
                log.exception("%s: reading the stream of %s failed", self.mapping.function, self.table_name)
                self._stop.wait(1.0)

"""SQS event source mappings: poll a queue, invoke the function with a batch, delete what succeeded.

What gets deleted follows Lambda: everything when the function returns; nothing when it raises
(the messages come back after the visibility timeout, and the queue's redrive policy moves them to
the dead-letter queue eventually); with ``ReportBatchItemFailures``, everything except the
``batchItemFailures`` the function returns — and nothing if that list is malformed, since Lambda
then treats the whole batch as failed. FIFO ordering guarantees are not emulated.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from local.stack import SqsMapping

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 1  # short, so that shutdown never waits long for a poll


class Invoker(Protocol):
    def invoke(self, ref: str, event: Any) -> Any: ...


def sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """A received message as a record of Lambda's SQS event."""
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(value["BinaryValue"]).decode()
            if "BinaryValue" in value
            else None,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": [base64.b64encode(v).decode() for v in value.get("BinaryListValues", [])],
            "dataType": value["DataType"],
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def succeeded(message_ids: Sequence[str], result: Any, *, report_batch_item_failures: bool) -> set[str]:
    """The messages of a batch to delete, given what the function returned (it did not raise)."""
    everything = set(message_ids)
    if not report_batch_item_failures or result is None:
        return everything
    if not isinstance(result, dict):
        log.error("a ReportBatchItemFailures response must be an object, got %r: whole batch failed", result)
        return set()
    failures = result.get("batchItemFailures")
    if not failures:
        return everything
    if not isinstance(failures, list):
        log.error("batchItemFailures must be a list, got %r: whole batch failed", failures)
        return set()
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            log.error("invalid batchItemFailures entry %r: whole batch failed", failure)
            return set()
        failed.add(identifier)
    return everything - failed


class SqsPoller:
    def __init__(
        self, mapping: SqsMapping, *, queue_url: str, runtime: Invoker, sqs_client: Any, region: str
    ) -> None:
        self.mapping = mapping
        self._queue_url = queue_url
        self._runtime = runtime
        self._sqs = sqs_client
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"sqs-{mapping.function}-{mapping.event}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 35.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def poll_once(self, *, wait_seconds: int = LONG_POLL_SECONDS) -> int:
        """Receive one batch, invoke, delete what succeeded. Returns how many messages were received."""
        messages = self._receive(wait_seconds)
        if not messages:
            return 0
        event = {
            "Records": [
                sqs_record(m, queue_arn=self.mapping.queue_arn, region=self._region) for m in messages
            ]
        }
        ids = [m["MessageId"] for m in messages]
        try:
            result = self._runtime.invoke(self.mapping.function, event)
        except Exception as exc:
            log.warning(
                "%s: batch of %d from %s failed (%s); left for retry",
                self.mapping.function,
                len(ids),
                self._queue_url.rsplit("/", 1)[-1],
                exc,
            )
            return len(messages)
        done = succeeded(ids, result, report_batch_item_failures=self.mapping.report_batch_item_failures)
        self._delete([m for m in messages if m["MessageId"] in done])
        if len(done) < len(ids):
            log.info(
                "%s: %d of %d messages failed; left for retry",
                self.mapping.function,
                len(ids) - len(done),
                len(ids),
            )
        return len(messages)

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        batch_size = self.mapping.batch_size
        window = self.mapping.batching_window_seconds
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + window
        while len(messages) < batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            wait = wait_seconds if not messages else min(wait_seconds, max(0, int(remaining)))
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, batch_size - len(messages)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages") or []
            messages.extend(received)
            if not messages or window == 0 or remaining <= 0 or (not received and wait == 0):
                break
        return messages

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed") or []:
                log.error("could not delete a processed message: %s", failure)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("%s: polling %s failed", self.mapping.function, self._queue_url)
                self._stop.wait(1.0)

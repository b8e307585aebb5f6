"""Webhook test support: a receiver on loopback that records what it gets and answers as told, and
Lambda events for the fan-out (DynamoDB stream) and delivery (SQS) functions shaped like events/."""

from __future__ import annotations

import copy
import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mailroom.store.table import serialize
from tests.support.lambda_api import load_event

# (index of the request for its webhook-id, starting at 1; the request) -> (status, headers)
Behaviour = Callable[[int, "Received"], tuple[int, dict[str, str]]]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool | None = None  # by the standardwebhooks library, when the receiver has the secret
    status: int = 0  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


def always(status: int, headers: dict[str, str] | None = None) -> Behaviour:
    return lambda _n, _r: (status, dict(headers or {}))


def fail_first(k: int, status: int = 503) -> Behaviour:
    """Fails the first ``k`` requests of each webhook-id, then accepts."""
    return lambda n, _r: (status, {}) if n <= k else (204, {})


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 (its own thread); ``behaviour`` decides each answer."""

    behaviour: Behaviour = field(default_factory=lambda: always(204))
    received: list[Received] = field(default_factory=list)
    # Set it (once the webhook exists) to verify every request; a request that fails gets 400.
    secret: str | None = None
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                request = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.time(),
                )
                verified = receiver._verify(request)
                with receiver._lock:
                    n = receiver._seen[request.webhook_id] = receiver._seen.get(request.webhook_id, 0) + 1
                status, headers = receiver.behaviour(n, request)
                if verified is False:
                    status, headers = 400, {}
                with receiver._lock:
                    receiver.received.append(dataclasses.replace(request, verified=verified, status=status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def _verify(self, request: Received) -> bool | None:
        if self.secret is None:
            return None
        from standardwebhooks import Webhook
        from standardwebhooks.webhooks import WebhookVerificationError

        try:
            Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError:
            return False
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def for_id(self, webhook_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.webhook_id == webhook_id]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], *, timeout: float = 20.0
    ) -> list[Received]:
        """Poll (no fixed sleep) until ``predicate`` holds for what was received, or fail."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: condition not met within {timeout} s; got {len(snapshot)}")
            time.sleep(0.05)


@contextmanager
def receiver(behaviour: Behaviour | None = None) -> Iterator[Receiver]:
    running = Receiver(behaviour=behaviour or always(204)).start()
    try:
        yield running
    finally:
        running.stop()


def stream_event(items: list[dict[str, Any]], *, first_sequence: int = 1000) -> dict[str, Any]:
    """A DynamoDB stream event (events/dynamodb_stream_insert.json) with one INSERT per item."""
    template = load_event("dynamodb_stream_insert.json")["Records"][0]
    records = []
    for offset, item in enumerate(items):
        record = copy.deepcopy(template)
        wire = serialize(item)
        record["dynamodb"]["Keys"] = {"PK": wire["PK"], "SK": wire["SK"]}
        record["dynamodb"]["NewImage"] = json.loads(json.dumps(wire, default=str))
        record["dynamodb"]["SequenceNumber"] = str(first_sequence + offset)
        record["eventID"] = f"{first_sequence + offset:032x}"
        records.append(record)
    return {"Records": records}


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """An SQS event (events/sqs_receive.json's shape) from messages received with boto3."""
    from local.pollers import sqs_record

    return {"Records": [sqs_record(m, queue_arn=queue_arn, region="us-east-1") for m in messages]}


@dataclass(frozen=True)
class WebhookAws:
    queue_url: str
    queue_arn: str
    dlq_url: str
    key_alias: str


def provision_webhook_aws(monkeypatch: Any, *, schedule: str = "1,1,1") -> WebhookAws:
    """Inside moto: the KMS key and queues of the template's webhook pipeline, and the settings
    that name them (loopback receivers allowed, a retry schedule of seconds)."""
    import boto3

    from mailroom.settings import get_settings

    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="webhook secrets")["KeyMetadata"]["KeyId"]
    alias = "alias/mailroom-test"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="mailroom-test-WebhookDeadLetterQueue")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName="mailroom-test-WebhookQueue",
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 30}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for name, value in {
        "MAILROOM_KMS_KEY_ID": alias,
        "MAILROOM_WEBHOOK_QUEUE_URL": queue_url,
        "MAILROOM_WEBHOOK_DLQ_URL": dlq_url,
        "MAILROOM_WEBHOOK_ALLOW_PRIVATE": "1",
        "MAILROOM_WEBHOOK_RETRY_SCHEDULE": schedule,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return WebhookAws(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, key_alias=alias)

"""SQS event source mapping: event shape, partial batch responses, retries and redrive (moto in-process)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from local.aws import Clients, provision
from local.pollers import SqsPoller, succeeded
from local.runtime import FunctionRuntime
from local.stack import Stack
from tests.support.local_records import read_records

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"


@pytest.mark.parametrize(
    ("result", "report", "expected"),
    [
        (None, True, {"a", "b", "c"}),
        ({}, True, {"a", "b", "c"}),
        ({"batchItemFailures": []}, True, {"a", "b", "c"}),
        ({"batchItemFailures": None}, True, {"a", "b", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, True, {"a", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, False, {"a", "b", "c"}),  # not reported: all done
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, True, set()),
        ({"batchItemFailures": [{"wrongKey": "b"}]}, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True, set()),
        ("not an object", True, set()),
    ],
)
def test_what_gets_deleted(result, report, expected):
    assert succeeded(["a", "b", "c"], result, report_batch_item_failures=report) == expected


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, Clients]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        stack = Stack.load(FIXTURE)
        clients = Clients(region="us-east-1")
        provision(stack, clients)
        yield stack, clients


@pytest.fixture
def runtime(aws: tuple[Stack, Clients]) -> Iterator[FunctionRuntime]:
    runtime = FunctionRuntime(aws[0].functions, concurrency=4)
    yield runtime
    runtime.shutdown(wait_seconds=5)


def poller_for(stack: Stack, clients: Clients, runtime: FunctionRuntime) -> tuple[SqsPoller, str, str]:
    (mapping,) = stack.sqs_mappings
    queue = stack.queue_by_arn(mapping.queue_arn)
    dlq = next(q for q in stack.queues if q.logical_id == "DeadLetters")
    sqs = clients("sqs")
    url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=dlq.name)["QueueUrl"]
    return (
        SqsPoller(mapping, queue_url=url, runtime=runtime, sqs_client=sqs, region="us-east-1"),
        url,
        dlq_url,
    )


def records(folder: Path) -> list[dict]:
    path = folder / "Batch.jsonl"
    return read_records(path)


def test_partial_batch_failures_are_retried_then_redriven(aws, runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    stack, clients = aws
    poller, url, dlq_url = poller_for(stack, clients, runtime)
    sqs = clients("sqs")
    for body in ("ok-1", "fail-2", "ok-3"):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": body[:2]}},
        )

    assert poller.poll_once(wait_seconds=0) == 3
    (event,) = records(tmp_path)
    first = event["Records"][0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == stack.sqs_mappings[0].queue_arn
    assert first["awsRegion"] == "us-east-1"
    assert first["body"] == "ok-1"
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(first["attributes"])
    assert first["messageAttributes"]["kind"] == {
        "stringValue": "ok",
        "binaryValue": None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert first["md5OfBody"] and first["receiptHandle"] and first["messageId"]

    # Only the failed message is left (visibility timeout 0: visible again at once).
    assert poller.poll_once(wait_seconds=0) == 1
    retry = records(tmp_path)[-1]["Records"]
    assert [r["body"] for r in retry] == ["fail-2"]
    assert retry[0]["attributes"]["ApproximateReceiveCount"] == "2"

    # maxReceiveCount is 2: the third receive moves it to the dead-letter queue instead.
    assert poller.poll_once(wait_seconds=0) == 0
    moved = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == ["fail-2"]


@pytest.mark.parametrize("poison", ["crash", "malformed"])
def test_a_failed_batch_deletes_nothing(aws, runtime, tmp_path, monkeypatch, poison):
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    stack, clients = aws
    poller, url, _ = poller_for(stack, clients, runtime)
    sqs = clients("sqs")
    for body in ("ok-1", poison):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert poller.poll_once(wait_seconds=0) == 2
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == sorted(["ok-1", poison])


def test_empty_queue_invokes_nothing(aws, runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    stack, clients = aws
    poller, _, _ = poller_for(stack, clients, runtime)
    assert poller.poll_once(wait_seconds=0) == 0
    assert records(tmp_path) == []

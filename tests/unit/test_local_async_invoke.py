"""Asynchronous invocations (local/async_invoke.py): a failed event runs again as many times as the
function's EventInvokeConfig allows, then goes to its OnFailure queue as Lambda's destination
record (moto in-process, the fixture template's functions in the local runtime)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local.async_invoke import AsyncInvoker
from local.aws import Clients, provision
from local.runtime import FunctionError, FunctionRuntime
from local.stack import Stack
from tests.support.local_records import read_records

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Stack, Clients]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    with mock_aws():
        stack = Stack.load(FIXTURE)
        clients = Clients(region="us-east-1")
        provision(stack, clients)
        yield stack, clients


@pytest.fixture
def invoker(aws: tuple[Stack, Clients]) -> Iterator[AsyncInvoker]:
    stack, clients = aws
    runtime = FunctionRuntime(stack.functions, concurrency=4)

    def queue_url(arn: str) -> str | None:
        queue = stack.queue_by_arn(arn)
        return clients("sqs").get_queue_url(QueueName=queue.name)["QueueUrl"] if queue else None

    invoker = AsyncInvoker(runtime, sqs=clients("sqs"), queue_url_of=queue_url, delays=(0.05, 0.1))
    yield invoker
    invoker.stop()
    runtime.shutdown(wait_seconds=5)


def dead_letters(aws: tuple[Stack, Clients]) -> list[dict[str, Any]]:
    stack, clients = aws
    sqs = clients("sqs")
    url = sqs.get_queue_url(QueueName=next(q for q in stack.queues if q.logical_id == "DeadLetters").name)
    messages = sqs.receive_message(QueueUrl=url["QueueUrl"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_the_template_gives_each_function_its_retries_and_destination(aws: tuple[Stack, Clients]) -> None:
    stack, _ = aws
    flaky, plain = stack.functions["Flaky"], stack.functions["Broken"]
    assert flaky.async_retries == 1
    assert flaky.async_on_failure_arn == stack.template.arn("DeadLetters")
    assert (plain.async_retries, plain.async_on_failure_arn) == (2, None)  # Lambda's defaults


def test_a_failed_event_runs_again_with_the_same_payload(
    invoker: AsyncInvoker, aws: tuple[Stack, Clients], tmp_path: Path
) -> None:
    event = {"key": "once", "fail": 1}
    assert invoker.submit("Flaky", event).result(timeout=10) == {"attempts": 2}
    assert read_records(tmp_path / "Flaky.jsonl") == [event]
    assert (invoker.retried, invoker.given_up) == (1, 0)
    assert dead_letters(aws) == []


def test_an_event_failing_every_retry_goes_to_the_on_failure_queue(
    invoker: AsyncInvoker, aws: tuple[Stack, Clients], tmp_path: Path
) -> None:
    event = {"key": "always", "fail": 5}
    with pytest.raises(FunctionError, match="attempt 2 fails on purpose"):
        invoker.submit("Flaky", event).result(timeout=10)
    assert (tmp_path / "flaky-always.count").read_text() == "2"  # the first try and one retry
    (record,) = dead_letters(aws)
    assert record["requestPayload"] == event
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith(":$LATEST")
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert invoker.given_up == 1


def test_without_a_destination_the_event_is_dropped_after_lambdas_two_retries(
    invoker: AsyncInvoker, aws: tuple[Stack, Clients]
) -> None:
    with pytest.raises(FunctionError, match="broken on purpose"):
        invoker.submit("Broken", {}).result(timeout=10)
    assert (invoker.retried, invoker.given_up) == (2, 1)
    assert dead_letters(aws) == []


def test_synchronous_invocations_are_not_retried(invoker: AsyncInvoker, tmp_path: Path) -> None:
    with pytest.raises(FunctionError):
        invoker.invoke("Flaky", {"key": "sync", "fail": 1})
    assert (tmp_path / "flaky-sync.count").read_text() == "1"
    assert invoker.retried == 0

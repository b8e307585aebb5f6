"""``store.errors``: one table turns AWS's error vocabulary into typed errors, and no botocore
exception leaves a client that ``store.aws`` hands out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from mailroom.store import aws
from mailroom.store import errors as store_errors
from mailroom.store.errors import (
    AlreadyExists,
    ConditionFailed,
    Contended,
    InvalidRequest,
    ItemTooLarge,
    ObjectMissing,
    SendingPaused,
    SendRefused,
    ServiceUnavailable,
    StoreError,
    Throttled,
    Unreachable,
    classify,
    translate,
)


@pytest.mark.parametrize(
    ("service", "operation", "code", "message", "kind", "retryable"),
    [
        ("dynamodb", "put_item", "ConditionalCheckFailedException", "no", ConditionFailed, False),
        ("dynamodb", "query", "ProvisionedThroughputExceededException", "slow", Throttled, True),
        (
            "dynamodb",
            "put_item",
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
            ItemTooLarge,
            False,
        ),
        (
            "dynamodb",
            "query",
            "ValidationException",
            "The provided starting key is invalid",
            InvalidRequest,
            False,
        ),
        ("s3", "get_object", "NoSuchKey", "gone", ObjectMissing, False),
        ("s3", "head_object", "404", "Not Found", ObjectMissing, False),
        ("s3", "put_object", "SlowDown", "slow", Throttled, True),
        ("stepfunctions", "start_execution", "ExecutionAlreadyExists", "x", AlreadyExists, False),
        ("stepfunctions", "describe_execution", "ExecutionDoesNotExist", "x", ObjectMissing, False),
        ("sesv2", "get_email_identity", "NotFoundException", "x", ObjectMissing, False),
        # The same code answering a send is about the message: it will never pass.
        ("sesv2", "send_email", "NotFoundException", "identity", SendRefused, False),
        ("sesv2", "send_email", "MessageRejected", "virus", SendRefused, False),
        # One meaning everywhere: paused sending resumes, so sends and forwards retry later.
        ("sesv2", "send_email", "SendingPausedException", "paused", SendingPaused, True),
        ("sesv2", "send_email", "TooManyRequestsException", "slow", Throttled, True),
        ("sqs", "send_message", "InternalError", "x", ServiceUnavailable, True),
        ("sqs", "send_message_batch", "RequestThrottled", "slow", Throttled, True),
        (
            "cloudformation",
            "describe_stacks",
            "ValidationError",
            "Stack with id x does not exist",
            ObjectMissing,
            False,
        ),
    ],
)
def test_the_table_classifies_each_code(
    service: str, operation: str, code: str, message: str, kind: type[StoreError], retryable: bool
) -> None:
    error = classify(code, message, service=service, operation=operation)
    assert type(error) is kind
    assert error.retryable is retryable
    assert (error.code, error.service, error.operation) == (code, service, operation)


def test_an_unknown_code_is_retryable_only_when_aws_said_5xx() -> None:
    assert type(classify("Weird", "x", status=400)) is StoreError
    assert not classify("Weird", "x", status=400).retryable
    assert classify("Weird", "x", status=503).retryable


def cancelled(*reasons: dict[str, str]) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": list(reasons),
        },  # type: ignore[typeddict-unknown-key]
        "TransactWriteItems",
    )


def test_transaction_cancellations_are_told_apart_by_their_reasons() -> None:
    condition = translate(cancelled({"Code": "None"}, {"Code": "ConditionalCheckFailed"}), service="dynamodb")
    assert isinstance(condition, ConditionFailed) and condition.failed(1) and not condition.failed(0)
    conflict = translate(cancelled({"Code": "TransactionConflict"}, {"Code": "None"}), service="dynamodb")
    assert isinstance(conflict, Contended) and conflict.retryable
    throttled = translate(cancelled({"Code": "ThrottlingError"}), service="dynamodb")
    assert isinstance(throttled, Throttled)
    too_large = translate(
        cancelled({"Code": "ValidationError", "Message": "Item size to update has exceeded the maximum"}),
        service="dynamodb",
    )
    assert isinstance(too_large, ItemTooLarge) and not too_large.retryable


def test_connection_failures_are_retryable_and_an_unreachable_endpoint_is_named() -> None:
    unreachable = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), service="s3")
    assert isinstance(unreachable, Unreachable) and unreachable.retryable
    assert "http://127.0.0.1:1" in unreachable.message
    timeout = translate(ReadTimeoutError(endpoint_url="http://x"), service="s3")
    assert isinstance(timeout, ServiceUnavailable) and timeout.retryable


@pytest.fixture
def clients(moto_env: None) -> Iterator[None]:
    aws.reset_clients()
    yield
    aws.reset_clients()


def test_real_client_calls_raise_store_errors_never_botocore_ones(clients: None) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="store-errors-b")
    with pytest.raises(ObjectMissing) as missing:
        s3.get_object(Bucket="store-errors-b", Key="nothing")
    assert missing.value.operation == "get_object" and not isinstance(missing.value, ClientError)
    # Paginators come from the same translated client.
    pages: Any = s3.get_paginator("list_objects_v2").paginate(Bucket="store-errors-none")
    with pytest.raises(ObjectMissing):
        list(pages)


def test_raw_clients_are_kept_for_libraries_that_read_botocore_errors(clients: None) -> None:
    raw = aws.raw_client("s3")
    raw.create_bucket(Bucket="store-errors-c")
    with pytest.raises(ClientError):
        raw.get_object(Bucket="store-errors-c", Key="nothing")
    with pytest.raises(ObjectMissing), store_errors.translated("s3", "get_object"):
        raw.get_object(Bucket="store-errors-c", Key="nothing")

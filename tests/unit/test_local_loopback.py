"""The local stack's own AWS calls reach the emulator's WSGI app without a socket (local/loopback.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from local import faults, loopback
from local.aws import ChangeTracker
from tests.support import ports


def _client(url: str, service: str = "dynamodb") -> Any:
    return boto3.session.Session().client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def emulator() -> Iterator[tuple[str, ChangeTracker]]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    tracker = ChangeTracker()
    url = f"http://127.0.0.1:{ports.free_port()}"  # nothing listens there
    stop = loopback.serve(url, tracker.middleware(DomainDispatcherApplication(create_backend_app)))
    yield url, tracker
    stop()


def test_calls_to_the_emulator_are_answered_in_process_and_counted_as_changes(
    emulator: tuple[str, ChangeTracker],
) -> None:
    url, tracker = emulator
    dynamodb = _client(url)
    before = tracker.version
    dynamodb.create_table(
        TableName="loopback",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="loopback", Item={"pk": {"S": "a"}, "blob": {"B": b"\x00\xff"}})
    item = dynamodb.get_item(TableName="loopback", Key={"pk": {"S": "a"}})["Item"]
    assert item["blob"] == {"B": b"\x00\xff"}
    assert tracker.version > before  # the writes went through the same middleware as HTTP requests

    s3 = _client(url, "s3")
    s3.create_bucket(Bucket="loopback")
    s3.put_object(Bucket="loopback", Key="k", Body=b"x" * 70_000)
    assert s3.get_object(Bucket="loopback", Key="k")["Body"].read() == b"x" * 70_000


def test_other_addresses_and_calls_after_stop_go_over_http() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    url = f"http://127.0.0.1:{ports.free_port()}"
    stop = loopback.serve(url, DomainDispatcherApplication(create_backend_app))
    served, elsewhere = _client(url), _client(f"http://127.0.0.1:{ports.free_port()}")
    served.list_tables()
    with pytest.raises(EndpointConnectionError):
        elsewhere.list_tables()
    stop()
    with pytest.raises(EndpointConnectionError):  # nothing listens there: only the loopback answered
        served.list_tables()


def test_an_injected_fault_never_reaches_the_emulator(emulator: tuple[str, ChangeTracker]) -> None:
    """botocore runs every before-send handler: the fault's answer wins, and nothing may be done."""
    url, _ = emulator
    setup = _client(url)
    setup.create_table(
        TableName="faulted",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    plan = faults.FaultPlan.parse("dynamodb=1,seed=3")
    assert plan is not None
    faults.install(plan)
    try:
        faulted = _client(url)  # made after install: every attempt faulted
        with pytest.raises(ClientError) as raised:
            faulted.put_item(TableName="faulted", Item={"pk": {"S": "never"}})
        assert raised.value.response["Error"]["Code"] in ("InternalServerError", "ThrottlingException")
    finally:
        faults.uninstall()
    assert "Item" not in setup.get_item(TableName="faulted", Key={"pk": {"S": "never"}}, ConsistentRead=True)

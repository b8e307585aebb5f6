"""moto's single-item writes are made atomic (local/moto_patches/item_writes.py): concurrent
``ADD`` updates of one item each count, as on DynamoDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.moto_patches import install

TABLE = "atomic-writes"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto intercepts only default endpoints
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_concurrent_adds_to_one_item_all_count(ddb: Any) -> None:
    threads, each = 16, 25
    barrier = threading.Barrier(threads)

    def add(_: int) -> None:
        barrier.wait()
        for _ in range(each):
            ddb.update_item(
                TableName=TABLE,
                Key={"PK": {"S": "counter"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(add, range(threads)))
    item = ddb.get_item(TableName=TABLE, Key={"PK": {"S": "counter"}})["Item"]
    assert int(item["n"]["N"]) == threads * each

"""local.moto_patches.transactions: the rollback: a cancelled TransactWriteItems leaves every item it
named as it was and no stream records, a committed one keeps its writes and records (moto
in-process, with the extensions installed as the local stack and the test fixtures install them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import moto_patches
from tests.support.aws import create_table_from_template

TABLE = "transactions-test"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_patches.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table_from_template(client, TABLE)
        client.update_table(
            TableName=TABLE,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def stream_records(client: Any) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def add_one(pk: str, sk: str, *, below: int | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": key(pk, sk),
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if below is not None:
        update["ConditionExpression"] = "attribute_not_exists(n) OR n < :limit"
        update["ExpressionAttributeValues"][":limit"] = {"N": str(below)}
    return {"Update": update}


def test_a_cancelled_transaction_undoes_the_writes_before_the_failed_condition(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={**key("c", "counter"), "n": {"N": "5"}})
    ddb.put_item(TableName=TABLE, Item={**key("a", "old"), "v": {"S": "before"}})
    ddb.put_item(TableName=TABLE, Item={**key("a", "kept"), "v": {"S": "here"}})
    records_before = len(stream_records(ddb))

    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("a", "new"), "v": {"S": "x"}}}},
                {"Put": {"TableName": TABLE, "Item": {**key("a", "old"), "v": {"S": "after"}}}},
                {"Delete": {"TableName": TABLE, "Key": key("a", "kept")}},
                add_one("c", "other"),
                add_one("c", "counter", below=5),  # fails: n is 5
            ]
        )

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert "ConditionalCheckFailed" in str(raised.value)
    assert "Item" not in ddb.get_item(TableName=TABLE, Key=key("a", "new"))
    assert ddb.get_item(TableName=TABLE, Key=key("a", "old"))["Item"]["v"] == {"S": "before"}
    assert ddb.get_item(TableName=TABLE, Key=key("c", "counter"))["Item"]["n"] == {"N": "5"}
    assert "Item" not in ddb.get_item(TableName=TABLE, Key=key("c", "other"))
    assert len(stream_records(ddb)) == records_before
    found = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "a"}},
    )["Items"]
    assert [item["SK"]["S"] for item in found] == ["kept", "old"]


def test_a_committed_transaction_keeps_its_writes_and_stream_records(ddb: Any) -> None:
    records_before = len(stream_records(ddb))
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**key("b", "1"), "v": {"S": "x"}}}},
            add_one("b", "counter", below=1),
        ]
    )
    assert ddb.get_item(TableName=TABLE, Key=key("b", "counter"))["Item"]["n"] == {"N": "1"}
    written = {record["dynamodb"]["Keys"]["SK"]["S"] for record in stream_records(ddb)[records_before:]}
    assert written == {"1", "counter"}


def test_a_transaction_retried_with_its_client_request_token_is_applied_once(ddb: Any) -> None:
    """botocore keeps a TransactWriteItems' token when it retries one that timed out: AWS answers
    the retry as applied (for ten minutes) instead of refusing it by its own conditions."""
    first = {"TableName": TABLE, "Item": key("T#1", "A"), "ConditionExpression": "attribute_not_exists(PK)"}
    counted = add_one("T#1", "COUNT")
    items = [{"Put": first}, counted]
    ddb.transact_write_items(TransactItems=items, ClientRequestToken="retried-token")
    ddb.transact_write_items(TransactItems=items, ClientRequestToken="retried-token")
    assert ddb.get_item(TableName=TABLE, Key=key("T#1", "COUNT"))["Item"]["n"] == {"N": "1"}
    with pytest.raises(ClientError) as refused:  # a new request: its conditions are checked
        ddb.transact_write_items(TransactItems=items, ClientRequestToken="another-token")
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    ddb.transact_write_items(TransactItems=[counted], ClientRequestToken="retried-token-2")
    assert ddb.get_item(TableName=TABLE, Key=key("T#1", "COUNT"))["Item"]["n"] == {"N": "2"}


def test_a_token_covers_binary_values(ddb: Any) -> None:
    item = {**key("T#2", "A"), "blob": {"B": b"\x00\xff"}}
    put = {"Put": {"TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}
    for _ in range(2):
        ddb.transact_write_items(TransactItems=[put], ClientRequestToken="binary-token")
    assert ddb.get_item(TableName=TABLE, Key=key("T#2", "A"))["Item"]["blob"] == {"B": b"\x00\xff"}

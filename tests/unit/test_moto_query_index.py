"""local.moto_patches.query_index: every Query answers what moto's own scan of the whole table
answers, after puts, updates that move an item between GSI keys, deletes, batch writes and
transactions (committed or rolled back), with pages, both directions and filters (moto in-process)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_patches
from local.moto_patches import query_index
from tests.support.aws import create_table_from_template

TABLE = "query-index-test"


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
        yield client


def _gsis(client: Any) -> list[tuple[str, str, str | None]]:
    described = client.describe_table(TableName=TABLE)["Table"]
    found = []
    for index in described.get("GlobalSecondaryIndexes", []):
        schema = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        found.append((index["IndexName"], schema["HASH"], schema.get("RANGE")))
    return found


def _all_pages(client: Any, **request: Any) -> list[dict[str, Any]]:
    items, start = [], None
    while True:
        page = client.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _answers(client: Any, monkeypatch: pytest.MonkeyPatch, **request: Any) -> None:
    indexed = _all_pages(client, **request)
    with monkeypatch.context() as scan:
        scan.setattr(query_index, "_candidates", lambda *args: None)  # moto's own scan
        scanned = _all_pages(client, **request)
    assert indexed == scanned, request


def _item(rng: random.Random, gsis: list[tuple[str, str, str | None]], pk: str, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = {"PK": {"S": pk}, "SK": {"S": sk}, "n": {"N": str(rng.randint(0, 9))}}
    for _name, hash_attr, range_attr in gsis:
        if rng.random() < 0.7:
            item[hash_attr] = {"S": f"h{rng.randint(0, 4)}"}
            if range_attr:
                item[range_attr] = {"S": f"r{rng.randint(0, 30):02d}"}
    return item


def test_queries_match_a_full_scan_through_every_kind_of_write(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    gsis = _gsis(ddb)
    assert gsis, "the template's table has global secondary indexes"
    keys = [(f"p{p}", f"s{s:02d}") for p in range(4) for s in range(25)]

    def check() -> None:
        for name, hash_attr, _range in gsis:
            for value in ("h0", "h1", "h3"):
                request = {
                    "TableName": TABLE,
                    "IndexName": name,
                    "KeyConditionExpression": "#h = :h",
                    "ExpressionAttributeNames": {"#h": hash_attr},
                    "ExpressionAttributeValues": {":h": {"S": value}},
                }
                _answers(ddb, monkeypatch, **request, Limit=3)
                _answers(ddb, monkeypatch, **request, ScanIndexForward=False, Limit=4)
        for partition in ("p0", "p2", "nope"):
            request = {
                "TableName": TABLE,
                "KeyConditionExpression": "PK = :p AND begins_with(SK, :s)",
                "ExpressionAttributeValues": {":p": {"S": partition}, ":s": {"S": "s1"}},
            }
            _answers(ddb, monkeypatch, **request, Limit=2)
            values = {**request.pop("ExpressionAttributeValues"), ":n": {"N": "4"}}
            _answers(ddb, monkeypatch, **request, FilterExpression="n > :n", ExpressionAttributeValues=values)

    check()  # the index is built from what is there: nothing yet
    for pk, sk in keys[:40]:
        ddb.put_item(TableName=TABLE, Item=_item(rng, gsis, pk, sk))
    check()
    for round_number in range(6):
        for pk, sk in rng.sample(keys, 15):
            ddb.put_item(TableName=TABLE, Item=_item(rng, gsis, pk, sk))
        for pk, sk in rng.sample(keys, 10):  # an update moves the item to another GSI key, or out
            _name, hash_attr, _range = rng.choice(gsis)
            if rng.random() < 0.5:
                ddb.update_item(
                    TableName=TABLE,
                    Key={"PK": {"S": pk}, "SK": {"S": sk}},
                    UpdateExpression="SET #h = :h",
                    ExpressionAttributeNames={"#h": hash_attr},
                    ExpressionAttributeValues={":h": {"S": f"h{rng.randint(0, 4)}"}},
                )
            else:
                ddb.update_item(
                    TableName=TABLE,
                    Key={"PK": {"S": pk}, "SK": {"S": sk}},
                    UpdateExpression="REMOVE #h",
                    ExpressionAttributeNames={"#h": hash_attr},
                )
        for pk, sk in rng.sample(keys, 5):
            ddb.delete_item(TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}})
        batch = rng.sample(keys, 6)
        ddb.batch_write_item(
            RequestItems={
                TABLE: [{"PutRequest": {"Item": _item(rng, gsis, pk, sk)}} for pk, sk in batch[:4]]
                + [{"DeleteRequest": {"Key": {"PK": {"S": pk}, "SK": {"S": sk}}}} for pk, sk in batch[4:]]
            }
        )
        chosen = rng.sample(keys, 3)
        operations: list[dict[str, Any]] = [
            {"Put": {"TableName": TABLE, "Item": _item(rng, gsis, *chosen[0])}},
            {"Delete": {"TableName": TABLE, "Key": {"PK": {"S": chosen[1][0]}, "SK": {"S": chosen[1][1]}}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"PK": {"S": chosen[2][0]}, "SK": {"S": chosen[2][1]}},
                    "UpdateExpression": "SET #h = :h",
                    "ExpressionAttributeNames": {"#h": gsis[0][1]},
                    "ExpressionAttributeValues": {":h": {"S": "h1"}},
                }
            },
        ]
        if round_number % 2:  # a condition that fails: the whole transaction is rolled back
            operations.append(
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "never"}, "SK": {"S": "there"}},
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                }
            )
            with pytest.raises(ddb.exceptions.TransactionCanceledException):
                ddb.transact_write_items(TransactItems=operations)
        else:
            ddb.transact_write_items(TransactItems=operations)
        check()

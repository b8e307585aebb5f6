"""bench.cost's arithmetic, against figures worked out by hand from docs/billing.md's us-east-1 prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench._aws_meter import Tally, dynamodb_units, item_size, record
from bench._cost_model import UnitWork, cost_per_thousand, gb_seconds, ses_chunks, storage_month
from mailroom.domain.billing import GB, PRICES

US = PRICES["us-east-1"]


def test_cost_per_thousand_units_by_hand() -> None:
    work = UnitWork(
        lambda_invocations=1,
        lambda_gb_seconds=0.5,
        apigateway_requests=1,
        dynamodb_read_units=4,
        dynamodb_write_units=10,
        s3_put_tier=2,
        s3_get_tier=1,
        ses_messages=1,
        ses_inbound_chunks=1,
        sqs_requests=2,
        stepfunctions_transitions=0.04,
        kms_requests=3,  # not in the price table: priced nowhere
    )
    costs = cost_per_thousand(work, US)
    # 1000 x (1 x 0.20/M + 0.5 GB-s x 0.0000133334)
    assert costs["lambda"] == Decimal("0.0068667")
    assert costs["apigateway"] == Decimal("0.001")  # 1000 x 1.00/M
    assert costs["dynamodb"] == Decimal("0.00675")  # 1000 x (4 x 0.125/M + 10 x 0.625/M)
    assert costs["s3"] == Decimal("0.0104")  # 1000 x (2 x 0.005/1000 + 0.0004/1000)
    assert costs["ses"] == Decimal("0.19")  # 1000 x (0.10/1000 + 0.09/1000)
    assert costs["sqs"] == Decimal("0.0008")  # 1000 x 2 x 0.40/M
    assert costs["stepfunctions"] == Decimal("0.001")  # 1000 x 0.04 x 0.025/1000
    assert sum(costs.values()) == Decimal("0.2168167")


def test_units_add_and_scale() -> None:
    total = UnitWork(dynamodb_write_units=3, sqs_requests=1) + UnitWork(dynamodb_write_units=1)
    assert total.scaled(0.5) == UnitWork(dynamodb_write_units=2, sqs_requests=0.5)


def test_lambda_bills_whole_milliseconds_at_the_configured_memory() -> None:
    assert gb_seconds(1024, 0.1234) == pytest.approx(0.124)
    assert gb_seconds(512, 0.0001) == pytest.approx(0.0005)


def test_ses_receiving_chunks_of_256_kb() -> None:
    assert [ses_chunks(0), ses_chunks(256 * 1024), ses_chunks(256 * 1024 + 1)] == [1, 1, 2]


def test_storage_month() -> None:
    assert storage_month(2 * GB, US) == Decimal("0.046")


def test_dynamodb_request_units_follow_the_published_rules() -> None:
    small = {"PK": {"S": "ab"}, "n": {"N": "12345"}}
    assert item_size(small) == 2 + 2 + 1 + 4  # names + "ab" + 5 digits in 3 bytes + 1
    big = {"PK": {"S": "x" * 1023}}  # 2 + 1023 bytes: two write units
    assert dynamodb_units("PutItem", {"Item": big}, {}) == (0.0, 2.0)
    transaction = {"TransactItems": [{"Put": {"Item": small}}, {"Update": {"Key": small}}]}
    assert dynamodb_units("TransactWriteItems", transaction, {}) == (0.0, 4.0)
    read = {"Item": {"PK": {"S": "y" * 5000}}}
    assert dynamodb_units("GetItem", {}, read) == (1.0, 0.0)  # 2 x 4 KB, eventually consistent
    assert dynamodb_units("GetItem", {"ConsistentRead": True}, {}) == (1.0, 0.0)  # a miss still costs
    query = {"Items": [{"PK": {"S": "z" * 2046}}, {"PK": {"S": "z" * 2047}}]}  # 4097 bytes together
    assert dynamodb_units("Query", {"ConsistentRead": True}, query) == (2.0, 0.0)
    batch = {"RequestItems": {"t": {"Keys": [small, small]}}}
    assert dynamodb_units("BatchGetItem", batch, {"Responses": {"t": [small]}}) == (1.0, 0.0)


def test_record_counts_s3_tiers_and_ses_recipients() -> None:
    tally = Tally()
    record(tally, "s3", "PutObject", {"Body": b"12345"}, {})
    record(tally, "s3", "CopyObject", {}, {})
    record(tally, "s3", "GetObject", {}, {})
    record(tally, "s3", "DeleteObject", {}, {})
    destination = {"Destination": {"ToAddresses": ["a@x.test"], "BccAddresses": ["b@x.test", "c@x.test"]}}
    record(tally, "sesv2", "SendEmail", destination, {})
    assert (tally.s3_put_tier, tally.s3_get_tier, tally.s3_bytes_put, tally.ses_recipients) == (2, 1, 5, 3)
    assert tally.requests("s3") == 4


def test_lambda_memory_is_read_from_the_template() -> None:
    from bench.cost import memory_mb
    from tests.support.aws import template

    resources = template()["Resources"].values()
    inbound = next(r for r in resources if r["Properties"].get("CodeUri") == "functions/inbound/")
    assert memory_mb("inbound") == inbound["Properties"]["MemorySize"]  # its own setting
    assert memory_mb("send") == template()["Globals"]["Function"]["MemorySize"]  # the Globals'
    with pytest.raises(LookupError):
        memory_mb("no_such_function")

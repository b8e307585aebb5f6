"""Snapshots: DynamoDB items, S3 objects, SQS messages (invisible and delayed too) and schedules survive
a restart of the emulated account; only changes trigger periodic snapshots."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from local.aws import ChangeTracker, Clients, may_change_state, provision
from local.persistence import PeriodicSnapshot, StateStore
from local.stack import Stack

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"
ACCOUNT, REGION = "123456789012", "us-east-1"
BINARY = bytes(range(256)) * 4


def fresh_account() -> tuple[Stack, Clients]:
    stack = Stack.load(FIXTURE)
    clients = Clients(region=REGION)
    provision(stack, clients)
    return stack, clients


def queue_messages(name: str) -> list:
    from moto.sqs.models import sqs_backends

    return list(sqs_backends[ACCOUNT][REGION].queues[name]._messages)


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_state_survives_a_fresh_account(tmp_path):
    schedule_at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    with mock_aws():
        stack, clients = fresh_account()
        table, bucket = stack.tables[0].name, stack.buckets[0].name
        jobs = next(q.name for q in stack.queues if q.logical_id == "Jobs")
        ddb, s3, sqs = clients("dynamodb"), clients("s3"), clients("sqs")
        ddb.put_item(
            TableName=table,
            Item={
                "PK": {"S": "a"},
                "SK": {"S": "1"},
                "blob": {"B": b"\x00\xff"},
                "n": {"N": "42"},
                "set": {"BS": [b"x", b"y"]},
            },
        )
        ddb.put_item(
            TableName=table,
            Item={
                "PK": {"S": "b"},
                "SK": {"S": "2"},
                "GSI1PK": {"S": "g"},
                "GSI1SK": {"S": "h"},
                "m": {"M": {"k": {"L": [{"S": "v"}]}}},
            },
        )
        s3.put_object(
            Bucket=bucket,
            Key="raw/one",
            Body=BINARY,
            ContentType="message/rfc822",
            Metadata={"origin": "smtp"},
        )
        s3.put_object(Bucket=bucket, Key="text.txt", Body=b"hello")
        url = sqs.get_queue_url(QueueName=jobs)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="in flight")
        received = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
        assert [m["Body"] for m in received] == ["in flight"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody="visible",
            MessageAttributes={"b": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}},
        )
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=600)
        scheduler = clients("scheduler")
        scheduler.create_schedule(
            Name="send-later",
            ScheduleExpression=f"at({schedule_at})",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": stack.functions["Ticker"].arn,
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                "Input": '{"id": 1}',
            },
        )
        store = StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION)
        store.save()
        saved_items = sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["PK"]["S"])

    with mock_aws():  # a new, empty account: as after a restart
        stack, clients = fresh_account()
        ddb, s3, sqs = clients("dynamodb"), clients("s3"), clients("sqs")
        assert ddb.scan(TableName=table)["Items"] == []
        assert StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION).restore() is True

        assert sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["PK"]["S"]) == saved_items
        assert (
            ddb.query(
                TableName=table,
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :g",
                ExpressionAttributeValues={":g": {"S": "g"}},
            )["Count"]
            == 1
        )
        got = s3.get_object(Bucket=bucket, Key="raw/one")
        assert got["Body"].read() == BINARY
        assert got["ContentType"] == "message/rfc822"
        assert got["Metadata"] == {"origin": "smtp"}
        assert s3.get_object(Bucket=bucket, Key="text.txt")["Body"].read() == b"hello"

        url = sqs.get_queue_url(QueueName=jobs)["QueueUrl"]
        visible = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        assert [m["Body"] for m in visible["Messages"]] == ["visible"]  # the others are still hidden
        assert visible["Messages"][0]["MessageAttributes"]["b"]["BinaryValue"] == b"\x01\x02"
        hidden = {m.body: m for m in queue_messages(jobs)}
        now_ms = datetime.now(UTC).timestamp() * 1000
        assert 590_000 < hidden["in flight"].visible_at - now_ms <= 600_000
        assert hidden["in flight"].approximate_receive_count == 1
        assert 590_000 < hidden["delayed"].delayed_until - now_ms <= 600_000

        schedule = clients("scheduler").get_schedule(Name="send-later")
        assert schedule["ScheduleExpression"] == f"at({schedule_at})"
        assert schedule["Target"]["Input"] == '{"id": 1}'


def test_unchanged_objects_are_not_rewritten_and_deleted_ones_are_collected(tmp_path):
    with mock_aws():
        stack, clients = fresh_account()
        bucket, s3 = stack.buckets[0].name, clients("s3")
        s3.put_object(Bucket=bucket, Key="a", Body=b"first")
        s3.put_object(Bucket=bucket, Key="b", Body=b"second")
        store = StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION)
        store.save()
        blobs = {p.name: p.stat().st_mtime_ns for p in store.blob_dir.iterdir()}
        assert len(blobs) == 2
        s3.delete_object(Bucket=bucket, Key="b")
        store.save()
        after = {p.name: p.stat().st_mtime_ns for p in store.blob_dir.iterdir()}
        assert len(after) == 1
        (name,) = after
        assert after[name] == blobs[name]
        manifest = json.loads(store.manifest_path.read_text())
        assert [o["key"] for o in manifest["s3"][bucket]] == ["a"]


def test_restore_without_a_snapshot_does_nothing(tmp_path):
    with mock_aws():
        _, clients = fresh_account()
        assert StateStore(tmp_path, clients, account_id=ACCOUNT, region=REGION).restore() is False


class CountingStore:
    def __init__(self) -> None:
        self.saves = 0

    def save(self) -> None:
        self.saves += 1


def test_periodic_snapshots_only_after_a_change():
    tracker, store = ChangeTracker(), CountingStore()
    snapshots = PeriodicSnapshot(store, tracker, interval=30)  # type: ignore[arg-type]
    assert snapshots.save_if_changed() is False
    tracker.mark()
    assert snapshots.save_if_changed() is True
    assert snapshots.save_if_changed() is False
    assert store.saves == 1


@pytest.mark.parametrize(
    ("environ", "writes"),
    [
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}, True),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, False),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "AmazonSQS.DeleteMessageBatch"}, True),
        ({"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket/key"}, False),
        ({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/key"}, True),
        ({"REQUEST_METHOD": "GET", "QUERY_STRING": "Action=DescribeActiveReceiptRuleSet"}, False),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/config"}, False),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/"}, True),  # unknown: counted as a change
    ],
)
def test_which_requests_count_as_changes(environ, writes):
    assert may_change_state(environ) is writes

"""DynamoDB stream event source mapping: filter patterns, batches, partial failures, bisecting, retries,
the on-failure destination, LATEST, trimming, and moto's transaction rollbacks (moto in-process)."""

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from moto import mock_aws

from local import moto_patches
from local.aws import Clients, provision
from local.moto_patches import streams as moto_streams
from local.runtime import FunctionRuntime
from local.stack import Stack
from local.streams import FilterPatternError, StreamPoller, matches, parse_pattern
from local.template import TemplateError
from tests.support.local_records import read_records

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "streams.yaml"

RECORD = {
    "eventName": "INSERT",
    "dynamodb": {
        "NewImage": {"type": {"S": "event"}, "size": {"N": "42"}, "tags": {"L": [{"S": "a"}]}},
        "SequenceNumber": "100",
    },
    "eventSource": "aws:dynamodb",
    "flag": True,
    "nothing": None,
    "count": 3,
    "labels": ["x", "y"],
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"eventName": ["INSERT"]}, True),
        ({"eventName": ["MODIFY", "INSERT"]}, True),
        ({"eventName": ["MODIFY"]}, False),
        ({"dynamodb": {"NewImage": {"type": {"S": ["event"]}}}}, True),
        ({"dynamodb": {"NewImage": {"type": {"S": ["audit"]}}}}, False),
        ({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"type": {"S": ["audit"]}}}}, False),
        ({"dynamodb": {"NewImage": {"missing": {"S": ["x"]}}}}, False),
        ({"eventSource": [{"prefix": "aws:"}]}, True),
        ({"eventSource": [{"suffix": ":dynamodb"}]}, True),
        ({"eventName": [{"equals-ignore-case": "insert"}]}, True),
        ({"eventName": [{"anything-but": ["MODIFY", "REMOVE"]}]}, True),
        ({"eventName": [{"anything-but": "INSERT"}]}, False),
        ({"dynamodb": {"NewImage": {"missing": [{"exists": False}]}}}, True),
        ({"dynamodb": {"NewImage": {"type": [{"exists": True}]}}}, True),
        ({"dynamodb": {"NewImage": {"type": [{"exists": False}]}}}, False),
        ({"count": [{"numeric": [">", 2, "<=", 3]}]}, True),
        ({"count": [{"numeric": ["<", 3]}]}, False),
        ({"count": [3]}, True),
        ({"count": ["3"]}, False),  # a string is not the number
        ({"flag": [True]}, True),
        ({"flag": [1]}, False),  # true is not 1
        ({"nothing": [None]}, True),
        ({"labels": ["y"]}, True),  # matches one element of an array
        ({"labels": ["z"]}, False),
    ],
)
def test_filter_patterns(pattern, expected):
    assert matches(parse_pattern(json.dumps(pattern)), RECORD) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "not json",
        "[]",
        "{}",
        '{"eventName": "INSERT"}',  # a rule is a list
        '{"eventName": []}',
        '{"eventName": [{"cidr": "10.0.0.0/24"}]}',
        '{"eventName": [{"numeric": ["~", 1]}]}',
        '{"eventName": [{"exists": "yes"}]}',
        '{"eventName": [{"anything-but": {"prefix": "x"}}]}',
        '{"eventName": [["nested"]]}',
    ],
)
def test_unsupported_patterns_are_refused(pattern):
    with pytest.raises(FilterPatternError):
        parse_pattern(pattern)


def test_the_template_mapping_is_read():
    stack = Stack.load(FIXTURE)
    (mapping,) = stack.stream_mappings
    assert mapping.function == "Changes"
    assert mapping.table == "Table"
    assert (mapping.starting_position, mapping.batch_size, mapping.maximum_retry_attempts) == (
        "TRIM_HORIZON",
        4,
        2,
    )
    assert mapping.bisect_on_error and mapping.report_batch_item_failures
    assert mapping.filters == ({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["job"]}}}},)
    assert mapping.on_failure_arn == stack.template.arn("Failures")


def test_an_unsupported_pattern_stops_the_template(tmp_path):
    text = FIXTURE.read_text().replace('"S": ["job"]', '"S": [{"wildcard": "j*"}]')
    broken = tmp_path / "streams.yaml"
    broken.write_text(text)
    for name in ("functions", "layer"):
        (tmp_path / name).symlink_to(FIXTURE.parent / name)
    with pytest.raises(TemplateError, match="wildcard"):
        Stack.load(broken)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, Clients]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_patches.install()
    with mock_aws():
        stack = Stack.load(FIXTURE)
        clients = Clients(region="us-east-1")
        provision(stack, clients)
        yield stack, clients


@pytest.fixture
def runtime(aws: tuple[Stack, Clients]) -> Iterator[FunctionRuntime]:
    runtime = FunctionRuntime(aws[0].functions, concurrency=2)
    yield runtime
    runtime.shutdown(wait_seconds=5)


def make_poller(stack, clients, runtime, **kwargs) -> StreamPoller:
    (mapping,) = stack.stream_mappings
    failures = next(q for q in stack.queues if q.logical_id == "Failures")
    poller = StreamPoller(
        mapping,
        table_name=stack.tables[0].name,
        on_failure_queue_url=clients("sqs").get_queue_url(QueueName=failures.name)["QueueUrl"],
        runtime=runtime,
        dynamodb=clients("dynamodb"),
        streams=clients("dynamodbstreams"),
        read=partial(moto_streams.read_stream, account_id="123456789012", region="us-east-1"),
        sqs=clients("sqs"),
        region="us-east-1",
        retry_pause_seconds=0,
        **kwargs,
    )
    poller.open()
    return poller


def put(clients, stack, sk: str, *, kind: str = "job", action: str = "ok") -> None:
    clients("dynamodb").put_item(
        TableName=stack.tables[0].name,
        Item={"PK": {"S": "p"}, "SK": {"S": sk}, "kind": {"S": kind}, "action": {"S": action}},
    )


def invocations(folder: Path) -> list[list[str]]:
    return [
        [r["dynamodb"]["NewImage"]["SK"]["S"] for r in record["Records"]]
        for record in read_records(folder / "Changes.jsonl")
    ]


def drain(poller: StreamPoller, limit: int = 20) -> None:
    """Poll until a poll passes nothing on (every record is done with or filtered out)."""
    for _ in range(limit):
        if poller.poll_once() == 0:
            return
    raise AssertionError("the stream did not drain")


@pytest.fixture
def records(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LOCAL_FIXTURE_RECORDS", str(tmp_path))
    return tmp_path


def test_filtered_batches_in_order_with_the_lambda_record_shape(aws, runtime, records):
    stack, clients = aws
    poller = make_poller(stack, clients, runtime)
    for i in range(6):
        put(clients, stack, f"job-{i}")
        put(clients, stack, f"other-{i}", kind="other")
    put(clients, stack, "job-0", action="changed")  # a MODIFY: filtered out
    drain(poller)
    assert invocations(records) == [["job-0", "job-1", "job-2", "job-3"], ["job-4", "job-5"]]
    first = json.loads((records / "Changes.jsonl").read_text().splitlines()[0])["Records"][0]
    assert first["eventSource"] == "aws:dynamodb" and first["eventName"] == "INSERT"
    assert first["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/")
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], int)
    assert first["dynamodb"]["Keys"] == {"PK": {"S": "p"}, "SK": {"S": "job-0"}}
    assert first["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert poller.poll_once() == 0  # everything, filtered records included, is checkpointed


def test_partial_failures_retry_from_the_failed_record_then_give_up(aws, runtime, records):
    stack, clients = aws
    poller = make_poller(stack, clients, runtime)
    for sk, action in (("a", "ok"), ("b", "fail"), ("c", "ok")):
        put(clients, stack, sk, action=action)
    drain(poller)
    # a succeeded once; from b on, the batch is retried twice (MaximumRetryAttempts 2), then skipped.
    assert invocations(records) == [["a", "b", "c"], ["b", "c"], ["b", "c"]]
    sqs = clients("sqs")
    url = sqs.get_queue_url(QueueName=next(q.name for q in stack.queues if q.logical_id == "Failures"))[
        "QueueUrl"
    ]
    (failed,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    info = json.loads(failed["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 2
    put(clients, stack, "d")
    drain(poller)
    assert invocations(records)[-1] == ["d"]


def test_a_crashing_batch_is_bisected_down_to_the_poison_record(aws, runtime, records):
    stack, clients = aws
    poller = make_poller(stack, clients, runtime)
    for sk, action in (("a", "ok"), ("b", "crash"), ("c", "ok"), ("d", "ok")):
        put(clients, stack, sk, action=action)
    drain(poller)
    calls = invocations(records)
    assert calls[:3] == [["a", "b", "c", "d"], ["a", "b"], ["a"]]
    assert calls.count(["b"]) == 3  # the poison record alone: first try and two retries
    assert calls[-1] == ["c", "d"]


def test_latest_skips_what_was_there_before(aws, runtime, records):
    stack, clients = aws
    put(clients, stack, "old")
    poller = make_poller(stack, clients, runtime, starting_position="LATEST")
    put(clients, stack, "new")
    drain(poller)
    assert invocations(records) == [["new"]]


def test_read_records_are_trimmed_and_numbering_goes_on(aws, runtime, records):
    stack, clients = aws
    table = stack.tables[0].name
    trimmed: list[int] = []

    def trim(name: str, through: int) -> None:
        trimmed.append(moto_streams.trim_stream(name, through, account_id="123456789012", region="us-east-1"))

    poller = make_poller(stack, clients, runtime, trim=trim)
    for i in range(3):
        put(clients, stack, f"job-{i}")
    drain(poller)
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends["123456789012"]["us-east-1"].tables[table].stream_shard
    assert sum(trimmed) == 3 and shard.items == []
    first = poller.checkpoint
    put(clients, stack, "job-3")
    drain(poller)
    assert invocations(records)[-1] == ["job-3"]
    assert poller.checkpoint == first + 1  # numbering continues across the trim
    assert shard.items == [] and shard.starting_sequence_number == poller.checkpoint + 1


def test_a_rolled_back_transaction_does_not_blind_the_poller(aws, runtime, records):
    stack, clients = aws
    table = stack.tables[0].name
    poller = make_poller(stack, clients, runtime)
    put(clients, stack, "first")
    drain(poller)
    ddb = clients("dynamodb")
    # A transaction whose condition fails: moto rolls back by replacing the table (and its stream).
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"PK": {"S": "p"}, "SK": {"S": "first"}, "kind": {"S": "job"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            ]
        )
    put(clients, stack, "second")
    drain(poller)
    assert invocations(records) == [["first"], ["second"]]


def test_an_idle_poller_sleeps_until_an_append_and_stops_at_once(aws, runtime, records, monkeypatch):
    import time

    from local import streams

    # Were the poller still reading on a timer, this backstop would make the test wait a minute.
    monkeypatch.setattr(streams, "IDLE_WAIT_SECONDS", 60.0)
    stack, clients = aws
    poller = make_poller(stack, clients, runtime, appends=moto_streams.APPENDS)
    reads = 0
    read = poller._read

    def counted_read():
        nonlocal reads
        reads += 1
        return read()

    poller._read = counted_read  # type: ignore[method-assign]
    poller._thread.start()
    try:
        time.sleep(1.5)  # a timer of 0.25 s would read six times
        idle_reads = reads
        put(clients, stack, "job-late")
        deadline = time.monotonic() + 10
        while not (records / "Changes.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert invocations(records) == [["job-late"]]
        assert idle_reads <= 2  # the first read found nothing; then the poller slept
    finally:
        started = time.monotonic()
        poller.stop()
        assert time.monotonic() - started < 5 and not poller._thread.is_alive()

"""local/faults.py: ``MAILROOM_FAULTS`` parsing, and faults answered through real botocore clients
(moto in-process) exactly as the service would answer: botocore parses and retries them, the
product's store translates them to retryable errors, the local stack's own clients never see them,
and a seed replays the same faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from local import faults
from local.aws import Clients
from local.config import ConfigError, LocalConfig
from local.faults import FaultPlan
from mailroom.store import aws
from mailroom.store.errors import ServiceUnavailable, StoreError, Throttled

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield
    faults.uninstall()
    aws.reset_clients()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries at once (the counts are the point here, not its waits)."""
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def client(service: str, config: Config = ONE_ATTEMPT) -> Any:
    return boto3.session.Session().client(service, region_name="us-east-1", config=config)  # type: ignore[call-overload]


def test_the_plan_is_parsed_from_mailroom_faults() -> None:
    plan = FaultPlan.parse("dynamodb=0.1, s3=0.05 sesv2=1 seed=7 persist=0.25")
    assert plan == FaultPlan({"dynamodb": 0.1, "s3": 0.05, "sesv2": 1.0}, seed=7, persist=0.25)
    assert FaultPlan.parse("") is None and FaultPlan.parse("seed=3") is None
    assert LocalConfig.from_env({"MAILROOM_FAULTS": "sqs=0.2"}).faults == FaultPlan({"sqs": 0.2})
    assert LocalConfig.from_env({}).faults is None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("dynamodb", "expected service=rate"),
        ("dynamodb=lots", "must be a number"),
        ("s3=1.5", "between 0 and 1"),
        ("seed=x,s3=0.1", "seed must be an integer"),
        ("s3=0.1,persist=2", "persist must be between 0 and 1"),
    ],
)
def test_a_plan_that_cannot_be_used_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        LocalConfig.from_env({"MAILROOM_FAULTS": text})


def test_an_unknown_service_is_refused_when_installing() -> None:
    with pytest.raises(ConfigError, match="not an AWS service"):
        faults.FaultInjector(FaultPlan({"dynamo": 0.1}))


@pytest.mark.parametrize(
    ("service", "call", "expected"),
    [
        ("dynamodb", lambda c: c.list_tables(), {(500, "InternalServerError"), (400, "ThrottlingException")}),
        ("s3", lambda c: c.list_buckets(), {(500, "InternalError"), (503, "SlowDown")}),
        (
            "sesv2",
            lambda c: c.list_email_identities(),
            {(500, "InternalServiceErrorException"), (429, "TooManyRequestsException")},
        ),
        ("sqs", lambda c: c.list_queues(), {(500, "InternalFailure"), (400, "RequestThrottled")}),
        ("ses", lambda c: c.list_identities(), {(500, "InternalFailure"), (400, "Throttling")}),
        (
            "stepfunctions",
            lambda c: c.list_state_machines(),
            {(500, "InternalFailure"), (400, "ThrottlingException")},
        ),
    ],
)
def test_each_fault_is_the_error_the_service_sends(
    emulated: None, service: str, call: Any, expected: Any
) -> None:
    faults.install(FaultPlan({service: 1.0}))
    faulted = client(service)
    seen = set()
    for _ in range(12):
        with pytest.raises(ClientError) as raised:
            call(faulted)
        response = raised.value.response
        seen.add((response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]))
    assert seen == expected  # both kinds, and nothing else


def test_botocore_retries_a_fault_and_the_store_sees_a_retryable_error(
    emulated: None, no_backoff: None
) -> None:
    injector = faults.install(FaultPlan({"dynamodb": 1.0, "s3": 1.0}, seed=1))
    with pytest.raises((ServiceUnavailable, Throttled)) as raised:
        aws.client("dynamodb").list_tables()
    assert raised.value.retryable
    with pytest.raises((ServiceUnavailable, Throttled)):
        aws.client("s3").list_buckets()
    stats = injector.stats()
    # The store's clients make four attempts (three retries): all faulted, the last reached the code.
    assert stats["dynamodb"]["attempts"] == stats["dynamodb"]["injected_total"] == 4
    assert (stats["dynamodb"]["retried_attempts"], stats["dynamodb"]["surfaced"]) == (3, 1)
    assert stats["s3"]["surfaced"] == 1


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("dynamodb", "list_tables"),
        ("s3", "list_buckets"),
        ("sesv2", "list_email_identities"),
        ("sqs", "list_queues"),
    ],
)
def test_every_fault_reaching_the_code_is_a_retryable_store_error(
    emulated: None, no_backoff: None, service: str, operation: str
) -> None:
    faults.install(FaultPlan({service: 1.0}, persist=1.0))
    seen = set()
    for _ in range(10):
        with pytest.raises(StoreError) as raised:
            getattr(aws.client(service), operation)()
        assert raised.value.retryable, (raised.value.code, type(raised.value).__name__)
        seen.add(raised.value.code)
    assert len(seen) == 2  # the server error and the throttling


def test_a_fault_on_one_attempt_is_absorbed_by_the_retry(emulated: None, no_backoff: None) -> None:
    plan = FaultPlan({"dynamodb": 0.5}, seed=0)
    injector = faults.install(plan)
    dynamodb = client("dynamodb", Config(retries={"mode": "standard", "total_max_attempts": 10}))
    retried = [dynamodb.list_tables()["ResponseMetadata"]["RetryAttempts"] for _ in range(8)]
    stats = injector.stats()["dynamodb"]
    assert sum(retried) == stats["injected_total"] > 0  # each fault cost one retry, none failed a call
    assert stats["attempts"] == 8 + sum(retried) and stats["surfaced"] == 0


def test_a_persisting_fault_lasts_through_every_retry_of_its_call(emulated: None, no_backoff: None) -> None:
    injector = faults.install(FaultPlan({"dynamodb": 0.3}, seed=3, persist=1.0))
    dynamodb = client("dynamodb", Config(retries={"mode": "standard", "total_max_attempts": 4}))
    failed: list[str] = []
    for _ in range(20):
        try:
            dynamodb.list_tables()
        except ClientError as exc:
            failed.append(exc.response["Error"]["Code"])
    stats = injector.stats()["dynamodb"]
    assert 0 < len(failed) == stats["persisted"] == stats["surfaced"]
    # Every faulted call failed all four attempts, and nothing else was faulted.
    assert stats["injected_total"] == 4 * len(failed) and stats["attempts"] == 20 + 3 * len(failed)


def test_the_same_seed_faults_the_same_attempts(emulated: None) -> None:
    def outcomes(seed: int) -> list[str]:
        faults.install(FaultPlan({"dynamodb": 0.3}, seed=seed))
        dynamodb = client("dynamodb")
        found = []
        for _ in range(30):
            try:
                dynamodb.list_tables()
                found.append("ok")
            except ClientError as exc:
                found.append(exc.response["Error"]["Code"])
        faults.uninstall()
        return found

    first = outcomes(7)
    assert outcomes(7) == first
    assert outcomes(8) != first
    assert {"ok", "InternalServerError", "ThrottlingException"} <= set(first)


def test_the_local_stacks_own_clients_and_other_services_are_not_faulted(emulated: None) -> None:
    faults.install(FaultPlan({"dynamodb": 1.0}))
    own = Clients(region="us-east-1")
    for _ in range(5):
        own("dynamodb").list_tables()  # the stack's pollers and snapshots: AWS's own side
        client("s3").list_buckets()  # not in the plan
    with pytest.raises(ClientError):
        client("dynamodb").list_tables()


def test_after_uninstall_nothing_is_faulted_old_clients_included(emulated: None) -> None:
    faults.install(FaultPlan({"dynamodb": 1.0}))
    made_before = client("dynamodb")
    own_before = Clients(region="us-east-1")("dynamodb")
    faults.uninstall()
    made_before.list_tables()
    own_before.list_tables()
    client("dynamodb").list_tables()
    Clients(region="us-east-1")("dynamodb").list_tables()


def test_nothing_is_faulted_while_paused(emulated: None) -> None:
    injector = faults.install(FaultPlan({"dynamodb": 1.0}))
    dynamodb = client("dynamodb")
    with faults.paused():
        dynamodb.list_tables()  # the local stack's bootstrap, through the functions' own clients
    with pytest.raises(ClientError):
        dynamodb.list_tables()
    assert injector.stats()["dynamodb"]["attempts"] == 1

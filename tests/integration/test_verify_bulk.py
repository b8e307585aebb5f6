"""Bulk verification through the API and the chunk worker (moto for AWS), DNS from a real
authoritative server (nsd) behind a forwarder that counts the questions really asked."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from tests.support.dns_counter import CountingDns, counting_dns
from tests.support.dns_server import AuthoritativeDns, ZoneRecord
from tests.support.lambda_api import LambdaContext, call, function_module
from tests.support.mailboxes import create_mail_infrastructure, delete, get, key, ok, post
from tests.support.smtp_target import TargetPolicy, smtp_target
from tests.support.webhooks import sqs_event

DOMAINS = [f"d{n:02d}.example.com" for n in range(50)]


@dataclass
class Bulk:
    org: NewOrganization
    dns: CountingDns
    bucket: str
    queue_url: str
    queue_arn: str

    def start(self, body: dict[str, Any], status: int = 202) -> Any:
        return ok(post("verify", self.org.admin_token, "/api/v1/verify/bulk", body), status)

    def job(self, job_id: str) -> Any:
        return ok(get("verify", self.org.admin_token, f"/api/v1/verify/bulk/{job_id}"))

    def work(self, limit: int | None = None) -> int:
        """Hand queued chunks to the worker like the event source (BatchSize 1); how many ran."""
        sqs = boto3.client("sqs", region_name="us-east-1")
        handled = 0
        while limit is None or handled < limit:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1).get("Messages", [])
            if not messages:
                break
            result = function_module("verify_bulk").handler(
                sqs_event(messages, queue_arn=self.queue_arn), LambdaContext(function_name="verify_bulk")
            )
            assert result == {"batchItemFailures": []}
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
            handled += 1
        return handled

    def results(self, job_id: str) -> list[dict[str, str]]:
        link = ok(get("verify", self.org.admin_token, f"/api/v1/verify/bulk/{job_id}/download"))
        url = urlparse(link["url"])
        assert parse_qs(url.query)["X-Amz-Expires"] == ["3600"] and "X-Amz-Signature" in parse_qs(url.query)
        key = unquote(url.path).split(f"/{self.bucket}/", 1)[-1].lstrip("/")
        body = (
            boto3.client("s3", region_name="us-east-1").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        )
        return list(csv.DictReader(io.StringIO(body.decode())))

    def credits(self) -> Any:
        return ok(get("verify", self.org.admin_token, "/api/v1/verify/credits"))


@pytest.fixture
def bulk(
    org: NewOrganization, dns_server: AuthoritativeDns, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bulk]:
    zone = [ZoneRecord("mx.example.com", "A", "127.0.0.1")]
    zone += [ZoneRecord(domain, "MX", "mx.example.com", 10) for domain in DOMAINS]
    dns_server.serve(zone)
    bucket, _purge = create_mail_infrastructure()
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="mailroom-test-VerifyBulkQueue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with counting_dns(dns_server.port) as counter:
        for name, value in {
            "MAILROOM_DNS_RESOLVER": counter.address,
            "MAILROOM_MAIL_BUCKET": bucket,
            "MAILROOM_VERIFY_QUEUE_URL": queue_url,
            "MAILROOM_VERIFY_MONTHLY_CREDITS": "20000",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield Bulk(org, counter, bucket, queue_url, queue_arn)
    get_settings.cache_clear()


def test_ten_thousand_addresses_over_fifty_domains(bulk: Bulk) -> None:
    rows = [f"user{n}@{DOMAINS[n % 50]}" for n in range(9_900)]
    rows += [row.upper() for row in rows[:100]]  # duplicates in another case: verified once
    job = bulk.start({"emails": rows, "name": "spring list"})
    assert (job["status"], job["rows"], job["unique"], job["verified"]) == ("running", 10_000, 9_900, 0)
    assert bulk.credits()["used"] == 9_900  # taken when the job was created

    # 50 domains of 198 addresses, kept together in chunks of at most 500: two domains a chunk.
    assert bulk.work() == 25
    done = bulk.job(job["id"])
    assert (done["status"], done["verified"], done["percent"], done["eta_seconds"]) == (
        "completed",
        9_900,
        100,
        None,
    )
    assert done["counts"] == {"deliverable": 9_900, "undeliverable": 0, "risky": 0, "unknown": 0}
    assert done["finished_at"] is not None and done["credits_used"] == 9_900

    # Each domain's MX was asked once; with MX records there is no A/AAAA fallback to ask.
    assert sorted(bulk.dns.asked) == sorted((d, "MX") for d in DOMAINS)
    assert set(bulk.dns.asked.values()) == {1}

    results = bulk.results(job["id"])
    assert len(results) == 10_000 and [r["row"] for r in results[:3]] == ["1", "2", "3"]
    assert results[0]["email"] == "user0@d00.example.com" and results[0]["status"] == "deliverable"
    assert results[9_900]["email"] == "USER0@D00.EXAMPLE.COM" and results[9_900]["status"] == "deliverable"
    assert results[9_900]["normalized"] == "user0@d00.example.com" and results[0]["mx"] == "true"
    credits = bulk.credits()
    assert credits["used"] == 9_900 and credits["verified"]["deliverable"] == 9_900

    listed = get("verify", bulk.org.admin_token, "/api/v1/verify/bulk").json()
    assert [j["id"] for j in listed["data"]] == [job["id"]]


def test_csv_input_duplicates_and_refusals(bulk: Bulk, monkeypatch: pytest.MonkeyPatch) -> None:
    document = (
        "name,Email,company\r\n"
        "Ann,ann@d01.example.com,Acme\r\n"
        "Bob,=cmd|' /C calc'!A0,Evil\r\n"
        "Ann again,ANN@d01.example.com,Acme\r\n"
        "Info,info@d02.example.com,Acme\r\n"
        "Nobody,nobody@missing.example.com,Nope\r\n"
    )
    job = bulk.start({"csv": document})
    assert (job["rows"], job["unique"]) == (5, 4)
    bulk.work()
    assert bulk.job(job["id"])["counts"] == {"deliverable": 1, "undeliverable": 2, "risky": 1, "unknown": 0}
    results = bulk.results(job["id"])
    assert [(r["email"], r["status"]) for r in results] == [
        ("ann@d01.example.com", "deliverable"),
        ("'=cmd|' /C calc'!A0", "undeliverable"),  # a formula is written as text
        ("ANN@d01.example.com", "deliverable"),
        ("info@d02.example.com", "risky"),
        ("nobody@missing.example.com", "undeliverable"),
    ]
    assert results[3]["reasons"] == "role_account" and results[4]["reasons"] == "domain_not_found"

    for body in (
        {},
        {"emails": ["a@example.com"], "csv": "a@example.com"},
        {"emails": []},
        {"csv": "\r\n"},
        {"upload_id": "../../other/file"},
        {"csv": "email\n" + "x" * 200_000},  # a field the csv module refuses
    ):
        refused = post("verify", bulk.org.admin_token, "/api/v1/verify/bulk", body)
        assert refused.status == 422, (body, refused.body)

    monkeypatch.setenv("MAILROOM_VERIFY_MONTHLY_CREDITS", "10")
    get_settings.cache_clear()
    left = bulk.credits()["remaining"]
    assert left == 6
    refused = post(
        "verify",
        bulk.org.admin_token,
        "/api/v1/verify/bulk",
        {"emails": [f"u{n}@d03.example.com" for n in range(7)]},
    )
    assert (refused.status, refused.error_code) == (402, "insufficient_credits")
    assert bulk.credits()["remaining"] == 6 and bulk.work() == 0  # nothing started


def test_cancel_refunds_what_was_not_verified(bulk: Bulk) -> None:
    rows = [f"user{n}@{DOMAINS[n % 3]}" for n in range(1_200)]  # three domains of 400: three chunks
    job = bulk.start({"emails": rows})
    assert bulk.work(limit=1) == 1
    running = bulk.job(job["id"])
    assert (running["status"], running["verified"], running["percent"]) == ("running", 400, 33)
    assert running["eta_seconds"] is not None

    early = get("verify", bulk.org.admin_token, f"/api/v1/verify/bulk/{job['id']}/download")
    assert (early.status, early.error_code) == (409, "job_not_completed")
    busy = delete("verify", bulk.org.admin_token, f"/api/v1/verify/bulk/{job['id']}")
    assert (busy.status, busy.error_code) == (409, "job_running")

    cancelled = ok(post("verify", bulk.org.admin_token, f"/api/v1/verify/bulk/{job['id']}/cancel"))
    assert (cancelled["status"], cancelled["credits_used"], cancelled["credits_refunded"]) == (
        "cancelled",
        400,
        800,
    )
    assert bulk.credits()["used"] == 400
    assert bulk.work() == 2  # the chunks still queued are dropped, not counted
    after = bulk.job(job["id"])
    assert (after["status"], after["verified"]) == ("cancelled", 400)
    again = post("verify", bulk.org.admin_token, f"/api/v1/verify/bulk/{job['id']}/cancel")
    assert (again.status, again.error_code) == (409, "job_not_running")

    assert delete("verify", bulk.org.admin_token, f"/api/v1/verify/bulk/{job['id']}").status == 204
    assert get("verify", bulk.org.admin_token, f"/api/v1/verify/bulk/{job['id']}").status == 404
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=bulk.bucket, Prefix="verify/")
    assert listed.get("KeyCount", 0) == 0


def test_a_large_csv_goes_through_a_pre_signed_upload(
    bulk: Bulk, other_org: NewOrganization, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = ok(post("verify", bulk.org.admin_token, "/api/v1/verify/bulk/uploads"), 201)
    assert (upload["method"], upload["headers"], upload["max_bytes"]) == (
        "PUT",
        {"Content-Type": "text/csv"},
        32 * 1024 * 1024,
    )
    url = urlparse(upload["url"])
    query = parse_qs(url.query)
    assert "content-type" in query["X-Amz-SignedHeaders"][0].split(";") and query["X-Amz-Expires"] == ["3600"]
    key = unquote(url.path).split(f"/{bulk.bucket}/", 1)[-1].lstrip("/")
    assert key == f"verify-uploads/{bulk.org.organization['id']}/{upload['id']}.csv"
    s3 = boto3.client("s3", region_name="us-east-1")
    document = "\ufeffEmail,Name\r\n" + "".join(f"u{n}@d05.example.com,U {n}\r\n" for n in range(30))
    s3.put_object(Bucket=bulk.bucket, Key=key, Body=document.encode(), ContentType="text/csv")

    # Another organization cannot start a job from it: uploads are found under the caller's id.
    stolen = post("verify", other_org.admin_token, "/api/v1/verify/bulk", {"upload_id": upload["id"]})
    assert (stolen.status, stolen.error_code) == (422, "upload_not_found")

    job = bulk.start({"upload_id": upload["id"], "name": "uploaded"})
    assert (job["rows"], job["unique"]) == (30, 30)
    assert s3.list_objects_v2(Bucket=bulk.bucket, Prefix="verify-uploads/").get("KeyCount", 0) == 0
    bulk.work()
    results = bulk.results(job["id"])
    assert [r["email"] for r in results] == [f"u{n}@d05.example.com" for n in range(30)]
    assert {r["status"] for r in results} == {"deliverable"}

    again = post("verify", bulk.org.admin_token, "/api/v1/verify/bulk", {"upload_id": upload["id"]})
    assert (again.status, again.error_code) == (422, "upload_not_found")  # read once, then deleted

    second = ok(post("verify", bulk.org.admin_token, "/api/v1/verify/bulk/uploads"), 201)
    second_key = f"verify-uploads/{bulk.org.organization['id']}/{second['id']}.csv"
    s3.put_object(Bucket=bulk.bucket, Key=second_key, Body=b"email\r\n\xff\xfe@example.com\r\n")
    garbled = post("verify", bulk.org.admin_token, "/api/v1/verify/bulk", {"upload_id": second["id"]})
    assert (garbled.status, garbled.error_code) == (422, "invalid_input")
    monkeypatch.setattr("mailroom.domain.verify_bulk.MAX_UPLOAD_BYTES", 10)
    large = post("verify", bulk.org.admin_token, "/api/v1/verify/bulk", {"upload_id": second["id"]})
    assert (large.status, large.error_code) == (422, "upload_too_large")
    assert bulk.credits()["used"] == 30


def test_a_redelivered_chunk_counts_once(bulk: Bulk) -> None:
    job = bulk.start({"emails": [f"u{n}@d04.example.com" for n in range(10)]})
    sqs = boto3.client("sqs", region_name="us-east-1")
    (message,) = sqs.receive_message(QueueUrl=bulk.queue_url, MaxNumberOfMessages=1)["Messages"]
    for _ in range(2):  # at-least-once delivery: the same record twice
        function_module("verify_bulk").handler(
            sqs_event([message], queue_arn=bulk.queue_arn), LambdaContext(function_name="verify_bulk")
        )
    done = bulk.job(job["id"])
    assert (done["status"], done["verified"], done["counts"]["deliverable"]) == ("completed", 10, 10)
    assert bulk.credits()["verified"]["deliverable"] == 10


def test_a_failing_record_is_reported_alone(bulk: Bulk) -> None:
    """Partial batch failures: a record the worker cannot handle is retried alone (then the DLQ);
    the batch's other records are done."""
    job = bulk.start({"emails": [f"u{n}@d06.example.com" for n in range(5)]})
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(QueueUrl=bulk.queue_url, MessageBody='{"job_id": 7}')
    messages: list[dict[str, Any]] = []
    while len(messages) < 2:
        messages += sqs.receive_message(QueueUrl=bulk.queue_url, MaxNumberOfMessages=10)["Messages"]
    event = sqs_event(messages, queue_arn=bulk.queue_arn)
    result = function_module("verify_bulk").handler(event, LambdaContext(function_name="verify_bulk"))
    (bad,) = [m["MessageId"] for m in messages if m["Body"] == '{"job_id": 7}']
    assert result == {"batchItemFailures": [{"itemIdentifier": bad}]}
    assert bulk.job(job["id"])["status"] == "completed"


def test_jobs_belong_to_their_organization_and_need_their_scopes(
    bulk: Bulk, other_org: NewOrganization
) -> None:
    job = bulk.start({"emails": ["a@d08.example.com"]})
    path = f"/api/v1/verify/bulk/{job['id']}"
    stranger = other_org.admin_token
    for method, suffix in (("GET", ""), ("GET", "/download"), ("POST", "/cancel"), ("DELETE", "")):
        result = call(
            "verify", method, path + suffix, token=stranger, headers=key() if method == "POST" else None
        )
        assert (result.status, result.error_code) == (404, "not_found"), (method, suffix)
    assert get("verify", stranger, "/api/v1/verify/bulk").json()["data"] == []

    created = post("tokens", bulk.org.admin_token, "/api/v1/tokens", {"name": "r", "scopes": ["verify:read"]})
    reader = ok(created, 201)["token"]
    assert ok(get("verify", reader, path))["id"] == job["id"]
    assert [j["id"] for j in get("verify", reader, "/api/v1/verify/bulk").json()["data"]] == [job["id"]]
    for refused in (
        post("verify", reader, "/api/v1/verify/bulk", {"emails": ["b@d08.example.com"]}),
        post("verify", reader, "/api/v1/verify/bulk/uploads"),
        post("verify", reader, path + "/cancel"),
        delete("verify", reader, path),
    ):
        assert (refused.status, refused.error_code) == (403, "insufficient_scope")
    assert bulk.job(job["id"])["status"] == "running"


def test_probes_of_a_job_count_against_the_organizations_window(
    bulk: Bulk, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = [f"u{n}@d07.example.com" for n in range(5)]
    with smtp_target(tmp_path_factory.mktemp("smtp"), TargetPolicy(mailboxes=set(addresses))) as target:
        for name, value in {
            "MAILROOM_VERIFY_SMTP_PROBE": "1",
            "MAILROOM_VERIFY_PROBE_PORT": str(target.port),
            "MAILROOM_VERIFY_ALLOW_PRIVATE": "1",
            "MAILROOM_VERIFY_PROBE_ORG_PER_MINUTE": "3",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        job = bulk.start({"emails": addresses, "smtp": True})
        bulk.work()
        assert len(target.policy.sessions) == 3  # one at a time, and no more than the window allows
    assert bulk.job(job["id"])["counts"] == {"deliverable": 3, "undeliverable": 0, "risky": 0, "unknown": 2}
    results = bulk.results(job["id"])
    assert sorted(r["smtp"] for r in results) == ["accepted"] * 3 + ["unknown"] * 2
    assert sorted(r["reasons"] for r in results if r["status"] == "unknown") == ["smtp_rate_limited"] * 2

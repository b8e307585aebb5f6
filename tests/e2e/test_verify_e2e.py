"""Bulk verification over HTTP through the local stack: a CSV uploaded with a real PUT to the
pre-signed URL, the job run by the stack's SQS poller and worker with DNS from a real authoritative
server (nsd) and SMTP probes against a real SMTP server (aiosmtpd), the results CSV fetched from its
pre-signed URL."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.dns_server import ZoneRecord, authoritative_dns
from tests.support.smtp_target import SmtpTarget, TargetPolicy, smtp_target

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("verify")]
ZONE = "example.org"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpTarget]:
    policy = TargetPolicy(mailboxes={"alice@d1.example.org"}, catch_all_domains={"catchall.example.org"})
    with smtp_target(tmp_path_factory.mktemp("smtp-target"), policy) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, target: SmtpTarget) -> Iterator[LocalStackProcess]:
    records = [
        ZoneRecord(f"mx.{ZONE}", "A", "127.0.0.1"),
        ZoneRecord(f"d1.{ZONE}", "MX", f"mx.{ZONE}", 10),
        ZoneRecord(f"catchall.{ZONE}", "MX", f"mx.{ZONE}", 10),
    ]
    with authoritative_dns(tmp_path_factory.mktemp("nsd"), ZONE) as dns:
        dns.serve(records)
        with start_stack(
            tmp_path_factory.mktemp("state"),
            MAILROOM_DNS_RESOLVER=dns.address,
            MAILROOM_VERIFY_SMTP_PROBE="true",
            MAILROOM_VERIFY_PROBE_PORT=str(target.port),
            MAILROOM_VERIFY_PROBE_SENDER="probe@verifier.example.net",
        ) as running:
            yield running


def call(http: httpx.Client, method: str, path: str, body: Any = None) -> httpx.Response:
    return http.request(method, path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def test_an_uploaded_list_is_verified_and_downloaded(stack: LocalStackProcess, target: SmtpTarget) -> None:
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as http, httpx.Client() as s3:
        upload = call(http, "POST", "/api/v1/verify/bulk/uploads")
        assert upload.status_code == 201, upload.text
        slot = upload.json()["data"]
        document = (
            "Name,Email\r\n"
            "Alice,alice@d1.example.org\r\n"
            "Nobody,nobody@d1.example.org\r\n"
            "Alice again,ALICE@d1.example.org\r\n"
            "Anyone,anyone@catchall.example.org\r\n"
            "Missing,someone@missing.example.org\r\n"
            "Broken,not an address\r\n"
        )
        # (The emulated S3 does not check signatures: that the content type is signed is checked
        # on the URL in tests/integration/test_verify_bulk.py.)
        put = s3.put(slot["url"], content=document.encode(), headers=slot["headers"])
        assert put.status_code == 200, put.text

        started = call(http, "POST", "/api/v1/verify/bulk", {"upload_id": slot["id"], "smtp": True})
        assert started.status_code == 202, started.text
        job = started.json()["data"]
        assert (job["rows"], job["unique"]) == (6, 5)

        deadline = time.monotonic() + 60
        while job["status"] == "running":
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
            job = http.get(f"/api/v1/verify/bulk/{job['id']}").json()["data"]
        assert job["status"] == "completed" and job["counts"] == {
            "deliverable": 1,
            "undeliverable": 3,
            "risky": 1,
            "unknown": 0,
        }

        link = http.get(f"/api/v1/verify/bulk/{job['id']}/download").json()["data"]
        fetched = s3.get(link["url"])
        assert fetched.status_code == 200 and "verification-" in fetched.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(fetched.text)))
        assert [(r["email"], r["status"], r["reasons"], r["smtp"]) for r in rows] == [
            ("alice@d1.example.org", "deliverable", "", "accepted"),
            ("nobody@d1.example.org", "undeliverable", "mailbox_rejected", "rejected"),
            ("ALICE@d1.example.org", "deliverable", "", "accepted"),
            ("anyone@catchall.example.org", "risky", "catch_all", "accepted"),
            ("someone@missing.example.org", "undeliverable", "domain_not_found", "skipped"),
            ("not an address", "undeliverable", "invalid_syntax", "not_requested"),
        ]
        # Three probes (the duplicate and the addresses without a mail host are not probed), no DATA.
        assert len(target.policy.sessions) == 3 and not any(s["data"] for s in target.policy.sessions)

        assert http.get("/api/v1/verify/credits").json()["data"]["used"] == 5
        assert call(http, "DELETE", f"/api/v1/verify/bulk/{job['id']}").status_code == 204

"""Domains over HTTP through the local stack, verified against a real authoritative DNS server.

nsd serves the zone ``example.org`` on loopback; the stack is started with
``MAILROOM_DNS_RESOLVER`` pointing at it, so verification does real DNS over UDP.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.dns_server import (
    AuthoritativeDns,
    ZoneRecord,
    authoritative_dns,
    records_from_requirements,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("domains-dns")]
ZONE = "example.org"


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthoritativeDns]:
    with authoritative_dns(tmp_path_factory.mktemp("nsd"), ZONE) as server:
        server.serve([])
        yield server


@pytest.fixture(scope="module")
def dns_stack(
    tmp_path_factory: pytest.TempPathFactory, dns_server: AuthoritativeDns
) -> Iterator[LocalStackProcess]:
    with start_stack(tmp_path_factory.mktemp("state"), MAILROOM_DNS_RESOLVER=dns_server.address) as running:
        yield running


@pytest.fixture
def client(dns_stack: LocalStackProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {dns_stack.admin_token}"}
    with httpx.Client(base_url=dns_stack.api_url, headers=headers, timeout=30) as http:
        yield http


def post(client: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def verified_events(stack: LocalStackProcess, org_id: str) -> list[dict[str, Any]]:
    """The organization's event stream, read from the emulated table (no events API before webhooks)."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("-Table"))
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ORG#{org_id}#EVENTS"}},
    )["Items"]
    return [i for i in items if i["event_type"]["S"] == "domain.verified"]


def test_a_domain_is_verified_once_and_breakage_is_visible(
    client: httpx.Client, dns_stack: LocalStackProcess, dns_server: AuthoritativeDns
) -> None:
    created = post(client, "/api/v1/domains", {"domain": f"Verify.{ZONE.upper()}"})
    assert created.status_code == 201, created.text
    domain = created.json()["data"]
    assert domain["domain"] == f"verify.{ZONE}" and domain["status"] == "pending"
    org_id = client.get("/api/v1/me").json()["data"]["organization"]["id"]

    requirements = client.get(f"/api/v1/domains/{domain['id']}/dns-requirements").json()["data"]["records"]
    zone = records_from_requirements(requirements)
    dns_server.serve(zone)
    check = post(client, f"/api/v1/domains/{domain['id']}/dns-recheck")
    assert check.status_code == 201
    assert check.json()["data"]["result"] == "verified", check.json()
    assert client.get(f"/api/v1/domains/{domain['id']}").json()["data"]["status"] == "verified"
    assert len(verified_events(dns_stack, org_id)) == 1

    post(client, f"/api/v1/domains/{domain['id']}/dns-recheck")
    assert len(verified_events(dns_stack, org_id)) == 1, "domain.verified is emitted once"

    dkim_name = f"{domain['dkim_selector']}._domainkey.verify.{ZONE}"
    truncated = [dataclasses.replace(r, value=r.value[:-40]) if r.name == dkim_name else r for r in zone]
    dns_server.serve([r for r in truncated if not r.name.startswith("_dmarc")])
    check_id = post(client, f"/api/v1/domains/{domain['id']}/dns-recheck").json()["data"]["id"]
    stored = client.get(f"/api/v1/dns-checks/{check_id}").json()["data"]
    by_purpose = {r["purpose"]: r for r in stored["records"]}
    assert by_purpose["dkim"]["status"] == "INVALID"
    assert by_purpose["dkim"]["found"] == [next(r.value for r in truncated if r.name == dkim_name)]
    assert by_purpose["dmarc"]["status"] == "MISSING"
    assert by_purpose["inbound_mx"]["status"] == "VALID"
    assert stored["result"] == "failed"


@pytest.mark.parametrize(
    "name",
    [
        "bad name.org",
        "x" * 64 + ".org",
        ".".join(["label"] * 60) + ".org",
        "localhost",
        "192.0.2.1",
        "[2001:db8::1]",
    ],
)
def test_bad_domain_names_are_422_over_http(client: httpx.Client, name: str) -> None:
    response = post(client, "/api/v1/domains", {"domain": name})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"][0]["field"] == "domain"
    assert error["request_id"] == response.headers["x-request-id"]


def test_zone_records_render_as_nsd_accepts(tmp_path: Path) -> None:
    # The harness itself: long TXT values are split into 255-byte strings.
    record = ZoneRecord("k._domainkey.example.org", "TXT", "p=" + "A" * 600)
    assert record.line().count('" "') == 2

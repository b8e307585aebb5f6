"""DNS set-up over HTTP through the local stack: a domain's records published in Route 53 (the
stack's own account, allowed by the template parameter Route53OwnAccount) and at Cloudflare (a local
Cloudflare API v4), then served by a real nsd and verified by the stack's DNS check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.cloudflare_api import CloudflareApi
from tests.support.cloudflare_schema import request_problems, response_problems
from tests.support.dns_server import AuthoritativeDns, ZoneRecord, authoritative_dns

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("dns-providers")]
ZONE = "example.org"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalStackProcess, AuthoritativeDns, CloudflareApi]]:
    with authoritative_dns(tmp_path_factory.mktemp("nsd"), ZONE) as dns, CloudflareApi() as cloudflare:
        dns.serve([])
        with start_stack(
            tmp_path_factory.mktemp("dns-providers"),
            MAILROOM_DNS_RESOLVER=dns.address,
            MAILROOM_CLOUDFLARE_API_URL=cloudflare.base_url,
            MAILROOM_PARAMETER_OVERRIDES="Route53OwnAccount=true",
        ) as stack:
            yield stack, dns, cloudflare


@pytest.fixture
def client(site: tuple[LocalStackProcess, AuthoritativeDns, CloudflareApi]) -> Iterator[httpx.Client]:
    stack = site[0]
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as http:
        yield http


def post(client: httpx.Client, path: str, body: Any = None, status: int = 201) -> Any:
    response = client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == status, response.text
    return response.json()["data"]


def set_up(client: httpx.Client, provider: str, domain_id: str, **connect: Any) -> dict[str, Any]:
    """connect → preview → apply; the apply's result."""
    post(client, f"/api/v1/{provider}/connect", {"domain_id": domain_id, **connect})
    planned = post(client, f"/api/v1/{provider}/preview", {"domain_id": domain_id})
    result: dict[str, Any] = post(
        client, f"/api/v1/{provider}/apply", {"preview_id": planned["id"]}, status=200
    )
    return result


def test_route53_in_the_stacks_own_account_publishes_records_that_verify(
    client: httpx.Client, site: tuple[LocalStackProcess, AuthoritativeDns, CloudflareApi]
) -> None:
    stack, dns, _cloudflare = site
    route53 = boto3.client(
        "route53",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"r53.{ZONE}"
    zone_id = route53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    zone_id = zone_id.rsplit("/", 1)[-1]
    domain = post(client, "/api/v1/domains", {"domain": name})
    listed = post(client, "/api/v1/route53/zones", {"name": name}, status=200)
    assert [z["id"] for z in listed] == [zone_id]
    result = set_up(client, "route53", domain["id"], zone_id=zone_id)
    assert [c["outcome"] for c in result["changes"]] == ["made"] * 5
    again = post(client, "/api/v1/route53/apply", {"preview_id": result["preview_id"]}, status=200)
    assert again == result  # the same preview applied twice: its recorded result, nothing made
    settled = post(client, "/api/v1/route53/preview", {"domain_id": domain["id"]})
    assert (settled["summary"]["unchanged"], settled["changes"]) == (5, [])

    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    served = [
        ZoneRecord(
            name=s["Name"].rstrip("."),
            type=s["Type"],
            value=v.split()[1].rstrip(".") if s["Type"] == "MX" else "".join(v.strip('"').split('" "')),
            priority=int(v.split()[0]) if s["Type"] == "MX" else None,
        )
        for s in sets
        if s["Type"] in ("MX", "TXT")
        for v in (r["Value"] for r in s["ResourceRecords"])
    ]
    dns.serve(served)
    check = post(client, f"/api/v1/domains/{domain['id']}/dns-recheck")
    assert check["result"] == "verified", check


def test_cloudflare_merges_spf_and_publishes_records_that_verify(
    client: httpx.Client, site: tuple[LocalStackProcess, AuthoritativeDns, CloudflareApi]
) -> None:
    _stack, dns, cloudflare = site
    name = f"cf.{ZONE}"
    zone_id = cloudflare.add_zone(name)
    cloudflare.add_record(zone_id, "TXT", f"bounce.{name}", "v=spf1 include:_spf.google.com ~all")
    token = cloudflare.add_token(zones=[zone_id])
    domain = post(client, "/api/v1/domains", {"domain": name})
    result = set_up(client, "cloudflare", domain["id"], zone_id=zone_id, token=token)
    assert sorted(c["action"] for c in result["changes"]) == ["create"] * 4 + ["update"]
    tokens = client.get("/api/v1/cloudflare/tokens").json()["data"]
    assert [t["token_prefix"] for t in tokens] == [token[:6]]

    served = [
        ZoneRecord(name=r["name"], type=r["type"], value=r["content"], priority=r.get("priority"))
        for r in cloudflare.records(zone_id)
    ]
    assert [r.value for r in served if r.value.startswith("v=spf1")] == [
        "v=spf1 include:_spf.google.com include:amazonses.com ~all"
    ]
    dns.serve(served)
    check = post(client, f"/api/v1/domains/{domain['id']}/dns-recheck")
    assert check["result"] == "verified", check
    # What the deployed function's SDK sent, and the local API answered, is as Cloudflare's schema says.
    problems = [p for seen in cloudflare.history for p in request_problems(seen) + response_problems(seen)]
    assert not problems, "\n".join(problems)

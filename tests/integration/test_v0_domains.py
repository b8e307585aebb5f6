"""/api/v0/domains through the authorizer and the domains function, under moto, verified against a
real DNS server (nsd on loopback): the same domains as /api/v1, shown the v0 way."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.store import aws
from mailroom.store import domains as domain_store
from mailroom.store.table import Table
from tests.support.dns_server import AuthoritativeDns, ZoneRecord, records_from_requirements
from tests.support.lambda_api import Result, call
from tests.support.v0 import TIMESTAMP, v0_error

DOMAINS = "/api/v0/domains"
FIELDS = {"domain_id", "status", "feedback_enabled", "records", "created_at", "updated_at"}


def add(token: str, **body: Any) -> Result:
    return call("agent_domains", "POST", DOMAINS, token=token, json_body=body)


def added(token: str, name: str = "example.com", **body: Any) -> dict[str, Any]:
    result = add(token, domain=name, **body)
    assert result.status == 200, (result.status, result.body)
    return result.json()  # type: ignore[no-any-return]


def get(token: str, domain_id: str) -> Result:
    return call("agent_domains", "GET", f"{DOMAINS}/{domain_id}", token=token)


def verify(token: str, domain_id: str) -> Result:
    return call("agent_domains", "POST", f"{DOMAINS}/{domain_id}/verify", token=token)


def test_adding_a_domain_returns_its_records(org: NewOrganization, table: Table) -> None:
    domain = added(org.admin_token, "Example.COM.")
    assert set(domain) == FIELDS
    assert (domain["domain_id"], domain["status"], domain["feedback_enabled"]) == (
        "example.com",
        "PENDING",
        True,
    )
    assert TIMESTAMP.match(domain["created_at"]) and TIMESTAMP.match(domain["updated_at"])
    records = domain["records"]
    assert all(set(r) == {"type", "name", "value", "status", "priority"} for r in records)
    assert all(r["status"] == "MISSING" for r in records)
    assert records[0] == {
        "type": "MX",
        "name": "example.com",
        "value": "inbound-smtp.us-east-1.amazonaws.com",
        "status": "MISSING",
        "priority": 10,
    }
    by_name = {(r["type"], r["name"]): r for r in records}
    assert by_name[("TXT", "bounce.example.com")]["value"] == "v=spf1 include:amazonses.com ~all"
    assert by_name[("TXT", "_dmarc.example.com")]["value"].startswith("v=DMARC1; p=none")
    dkim = [r for r in records if "._domainkey." in r["name"]]
    assert (
        len(dkim) == 1 and dkim[0]["value"].startswith("v=DKIM1; k=rsa; p=") and dkim[0]["priority"] is None
    )

    # The same domain through v1, registered with SES.
    v1 = call("domains", "GET", "/api/v1/domains", token=org.admin_token).json()["data"]
    assert [d["domain"] for d in v1] == ["example.com"] and v1[0]["feedback_enabled"] is True
    identity = aws.client("sesv2").get_email_identity(EmailIdentity="example.com")
    assert identity["IdentityType"] == "DOMAIN"
    assert get(org.admin_token, "example.com").json() == domain
    assert get(org.admin_token, "EXAMPLE.com").json() == domain  # the name, normalized


def test_feedback_enabled_is_stored(org: NewOrganization, table: Table) -> None:
    domain = added(org.admin_token, "quiet.example.com", feedback_enabled=False)
    assert domain["feedback_enabled"] is False
    item = domain_store.get_by_name(table, org.organization["id"], "quiet.example.com")
    assert item is not None and item["feedback_enabled"] is False
    assert get(org.admin_token, "quiet.example.com").json()["feedback_enabled"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "domain"),
        ({"domain": "localhost"}, "domain"),
        ({"domain": "a b.com"}, "domain"),
        ({"domain": "x.com", "x": 1}, "x"),
    ],
)
def test_invalid_bodies_are_422(org: NewOrganization, body: dict[str, Any], field: str) -> None:
    assert v0_error(add(org.admin_token, **body), 422, "ValidationError")["errors"][0]["field"] == field


def test_a_domain_is_hosted_once(org: NewOrganization, other_org: NewOrganization) -> None:
    added(org.admin_token)
    v0_error(add(org.admin_token, domain="example.com"), 409, "ConflictError")
    v0_error(add(other_org.admin_token, domain="example.com"), 409, "ConflictError")
    v0_error(get(other_org.admin_token, "example.com"), 404, "NotFoundError")
    v0_error(verify(other_org.admin_token, "example.com"), 404, "NotFoundError")
    v0_error(
        call("agent_domains", "DELETE", f"{DOMAINS}/example.com", token=other_org.admin_token),
        404,
        "NotFoundError",
    )
    assert call("agent_domains", "GET", DOMAINS, token=other_org.admin_token).json()["total"] == 0


def test_list_pages_by_number(org: NewOrganization) -> None:
    names = [added(org.admin_token, f"d{i}.example.com")["domain_id"] for i in range(3)]

    def page(**query: Any) -> dict[str, Any]:
        result = call("agent_domains", "GET", DOMAINS, token=org.admin_token, query=query)
        assert result.status == 200, result.body
        return result.json()  # type: ignore[no-any-return]

    everything = page()
    assert sorted(d["domain_id"] for d in everything["data"]) == sorted(names)
    assert (everything["total"], everything["page"], everything["page_size"]) == (3, 1, 20)
    assert all(set(d) == FIELDS and d["records"] for d in everything["data"])
    first, second = page(page_size=2), page(page=2, page_size=2)
    assert len(first["data"]) == 2 and len(second["data"]) == 1 and second["page"] == 2
    assert {d["domain_id"] for d in first["data"] + second["data"]} == set(names)
    v0_error(
        call("agent_domains", "GET", DOMAINS, token=org.admin_token, query={"page_size": 101}),
        422,
        "ValidationError",
    )


def test_unknown_and_malformed_names_are_404(org: NewOrganization) -> None:
    for name in ("nope.example.com", "not a name", "x" * 300, "mailroom.localhost"):
        v0_error(get(org.admin_token, name), 404, "NotFoundError")


def test_verify_checks_dns_and_reports_each_record(
    org: NewOrganization, table: Table, dns_server: AuthoritativeDns
) -> None:
    domain = added(org.admin_token)
    pending = verify(org.admin_token, "example.com")
    assert pending.status == 200, pending.body
    assert pending.json()["status"] == "PENDING" and all(
        r["status"] == "MISSING" for r in pending.json()["records"]
    )

    zone = records_from_requirements(domain["records"])
    dns_server.serve(zone[:1])  # only the MX so far
    partly = verify(org.admin_token, "example.com").json()
    assert [r["status"] for r in partly["records"]] == ["VALID"] + ["MISSING"] * (len(zone) - 1)

    elsewhere = ZoneRecord("example.com", "MX", "mx.elsewhere.example", 10)
    dns_server.serve([elsewhere, *zone[1:]])
    misconfigured = verify(org.admin_token, "example.com").json()
    assert misconfigured["status"] == "PENDING"  # v1 says failed: something else is published
    assert misconfigured["records"][0]["status"] == "MISSING"  # ...and v0 says the record is missing

    dns_server.serve(zone)
    verified = verify(org.admin_token, "example.com")
    body = verified.json()
    assert body["status"] == "VERIFIED" and all(r["status"] == "VALID" for r in body["records"])
    assert body["updated_at"] >= domain["updated_at"] and body["created_at"] == domain["created_at"]
    assert get(org.admin_token, "example.com").json() == body
    v1 = call("domains", "GET", "/api/v1/domains", token=org.admin_token).json()["data"][0]
    assert v1["status"] == "verified"


def test_delete_is_204_and_refused_while_inboxes_remain(org: NewOrganization, table: Table) -> None:
    added(org.admin_token)
    inbox = call(
        "agent_inboxes",
        "POST",
        "/api/v0/inboxes",
        token=org.admin_token,
        json_body={"username": "a", "domain": "example.com"},
    )
    assert inbox.status == 200, inbox.body
    busy = call("agent_domains", "DELETE", f"{DOMAINS}/example.com", token=org.admin_token)
    v0_error(busy, 409, "ConflictError")
    assert (
        call(
            "agent_inboxes", "DELETE", f"/api/v0/inboxes/{inbox.json()['inbox_id']}", token=org.admin_token
        ).status
        == 204
    )
    gone = call("agent_domains", "DELETE", f"{DOMAINS}/example.com", token=org.admin_token)
    assert gone.status == 204 and gone.body == b""
    v0_error(get(org.admin_token, "example.com"), 404, "NotFoundError")
    assert call("agent_domains", "GET", DOMAINS, token=org.admin_token).json()["total"] == 0
    assert added(org.admin_token)["status"] == "PENDING"  # the name is free again

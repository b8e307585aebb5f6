"""Domains: creation (SES identity with BYODKIM), validation, verification against a real DNS
server, the scheduled recheck, rotation, catch-all, bulk add, deletion and spam metrics."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from mailroom import clock
from mailroom.services.organizations import NewOrganization
from mailroom.store import aws, domain_metrics, events, organizations
from mailroom.store import domains as domain_store
from mailroom.store.table import Table
from tests.support.dns_server import AuthoritativeDns, ZoneRecord, records_from_requirements
from tests.support.lambda_api import LambdaContext, call, function_module, load_event


def post(token: str, path: str, body: Any = None, key: str | None = None) -> Any:
    key = key or hashlib.sha256(f"{path}{body}".encode()).hexdigest()
    return call("domains", "POST", path, token=token, json_body=body, headers={"Idempotency-Key": key})


def add_domain(org: NewOrganization, name: str = "example.com", **extra: Any) -> dict[str, Any]:
    response = post(org.admin_token, "/api/v1/domains", {"domain": name, **extra})
    assert response.status == 201, response.body
    return response.json()["data"]  # type: ignore[no-any-return]


def requirements(org: NewOrganization, domain_id: str) -> list[dict[str, Any]]:
    response = call("domains", "GET", f"/api/v1/domains/{domain_id}/dns-requirements", token=org.admin_token)
    assert response.status == 200
    return response.json()["data"]["records"]  # type: ignore[no-any-return]


def recheck(org: NewOrganization, domain_id: str, key: str) -> dict[str, Any]:
    response = post(org.admin_token, f"/api/v1/domains/{domain_id}/dns-recheck", key=key)
    assert response.status == 201, response.body
    return response.json()["data"]  # type: ignore[no-any-return]


def verified_events(table: Table, org: NewOrganization) -> list[dict[str, Any]]:
    page = events.list_page(table, org.organization["id"], per_page=100)
    return [e for e in page.items if e["event_type"] == "domain.verified"]


def test_create_registers_the_ses_identity_with_our_dkim_key(org: NewOrganization) -> None:
    domain = add_domain(
        org, "Example.COM.", description="main", mailboxes=5, defquota=100, maxquota=200, quota=1000
    )
    assert domain["domain"] == "example.com"
    assert domain["status"] == "pending"
    assert (domain["mailboxes"], domain["defquota"], domain["maxquota"], domain["quota"]) == (
        5,
        100,
        200,
        1000,
    )
    assert domain["aliases"] == 400  # mailcow default
    records = domain["dns_records"]
    assert [(r["type"], r["purpose"]) for r in records] == [
        ("MX", "inbound_mx"),
        ("MX", "mail_from_mx"),
        ("TXT", "spf"),
        ("TXT", "dkim"),
        ("TXT", "dmarc"),
    ]
    assert all(r["status"] == "MISSING" for r in records)
    assert records[0] == {
        "type": "MX",
        "name": "example.com",
        "value": "inbound-smtp.us-east-1.amazonaws.com",
        "priority": 10,
        "status": "MISSING",
        "found": [],
        "purpose": "inbound_mx",
    }
    dkim = records[3]
    assert dkim["name"] == f"{domain['dkim_selector']}._domainkey.example.com"
    assert dkim["value"].startswith("v=DKIM1; k=rsa; p=MII")
    identity = aws.client("sesv2").get_email_identity(EmailIdentity="example.com")
    assert identity["DkimAttributes"]["SigningEnabled"] is True
    mail_from = aws.client("ses").get_identity_mail_from_domain_attributes(Identities=["example.com"])
    assert mail_from["MailFromDomainAttributes"]["example.com"]["MailFromDomain"] == "bounce.example.com"


def test_private_dkim_key_is_not_stored(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org)
    item = domain_store.get(table, org.organization["id"], domain["id"])
    assert item is not None
    assert "PRIVATE" not in str(item) and not any("private" in k for k in item)


def test_idn_names_are_stored_as_punycode(org: NewOrganization) -> None:
    domain = add_domain(org, "Bücher.Example.COM")
    assert domain["domain"] == "xn--bcher-kva.example.com"
    assert domain["domain_unicode"] == "bücher.example.com"


@pytest.mark.parametrize(
    "name",
    [
        "with space.com",
        "a" * 64 + ".com",
        ".".join(["abcdefghi"] * 26) + ".com",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "2001:db8::1",
        "com",
        "-bad.com",
        "exa_mple.com",
        "example.123",
        "foo.localhost",
        "",
    ],
)
def test_invalid_domain_names_are_422(org: NewOrganization, name: str) -> None:
    response = post(org.admin_token, "/api/v1/domains", {"domain": name})
    assert response.status == 422
    assert response.json()["error"]["fields"][0]["field"] == "domain"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"defquota": 500, "maxquota": 100}, "body"),
        ({"maxquota": 50000, "quota": 100}, "body"),
        ({"backupmx": True}, "backupmx"),
        ({"mailboxes": -1}, "mailboxes"),
    ],
)
def test_inconsistent_limits_are_422(org: NewOrganization, extra: dict[str, Any], field: str) -> None:
    response = post(org.admin_token, "/api/v1/domains", {"domain": "example.com", **extra})
    assert response.status == 422
    assert response.json()["error"]["fields"][0]["field"] == field


def test_duplicates_are_409_within_and_across_organizations(
    org: NewOrganization, other_org: NewOrganization
) -> None:
    add_domain(org)
    again = post(org.admin_token, "/api/v1/domains", {"domain": "EXAMPLE.com"}, key="again")
    assert again.status == 409 and again.error_code == "domain_exists"
    elsewhere = post(other_org.admin_token, "/api/v1/domains", {"domain": "example.com"})
    assert elsewhere.status == 409 and elsewhere.error_code == "domain_taken"


def test_the_organization_domain_limit_is_enforced(org: NewOrganization, table: Table) -> None:
    table.update(
        f"ORG#{org.organization['id']}",
        "#ORG",
        "SET limits.domains = :one",
        expression_values={":one": {"N": "1"}},
    )
    add_domain(org, "one.example.com")
    response = post(org.admin_token, "/api/v1/domains", {"domain": "two.example.com"})
    assert response.status == 422 and response.error_code == "domain_limit_reached"
    assert organizations.get(table, org.organization["id"])["domain_count"] == 1  # type: ignore[index]


def test_verification_against_a_real_dns_server(
    org: NewOrganization, table: Table, dns_server: AuthoritativeDns
) -> None:
    domain = add_domain(org)
    first = recheck(org, domain["id"], "c0")
    assert first["result"] == "pending"
    assert {r["status"] for r in first["records"]} == {"MISSING"}

    zone = records_from_requirements(requirements(org, domain["id"]))
    dns_server.serve(zone)
    check = recheck(org, domain["id"], "c1")
    assert check["result"] == "verified", check
    assert all(r["status"] == "VALID" for r in check["records"])
    fetched = call("domains", "GET", f"/api/v1/dns-checks/{check['id']}", token=org.admin_token).json()[
        "data"
    ]
    assert fetched == check
    got = call("domains", "GET", f"/api/v1/domains/{domain['id']}", token=org.admin_token).json()["data"]
    assert got["status"] == "verified" and got["verified_at"]
    assert len(verified_events(table, org)) == 1
    assert verified_events(table, org)[0]["data"]["domain"] == "example.com"

    recheck(org, domain["id"], "c2")
    assert len(verified_events(table, org)) == 1, "domain.verified is emitted once"

    # A truncated DKIM key: INVALID, and the value found is shown.
    truncated = [
        dataclasses.replace(r, value=r.value[:60]) if r.name.startswith(domain["dkim_selector"]) else r
        for r in zone
    ]
    dns_server.serve(truncated)
    broken = recheck(org, domain["id"], "c3")
    dkim = next(r for r in broken["records"] if r["purpose"] == "dkim")
    assert dkim["status"] == "INVALID"
    assert dkim["found"] == [next(r.value for r in truncated if r.name == dkim["name"])]
    assert broken["result"] == "failed"

    # DMARC removed: MISSING. A second SPF record: INVALID with both shown.
    spf_name = f"bounce.{domain['domain']}"
    changed = [r for r in zone if not r.name.startswith("_dmarc")]
    changed.append(ZoneRecord(spf_name, "TXT", "v=spf1 include:_spf.google.com ~all"))
    dns_server.serve(changed)
    result = {r["purpose"]: r for r in recheck(org, domain["id"], "c4")["records"]}
    assert result["dmarc"]["status"] == "MISSING" and result["dmarc"]["found"] == []
    assert result["spf"]["status"] == "INVALID"
    assert sorted(result["spf"]["found"]) == [
        "v=spf1 include:_spf.google.com ~all",
        "v=spf1 include:amazonses.com ~all",
    ]
    assert result["inbound_mx"]["status"] == "VALID"
    requirements_now = {r["purpose"]: r["status"] for r in requirements(org, domain["id"])}
    assert requirements_now["dmarc"] == "MISSING" and requirements_now["spf"] == "INVALID"


def test_the_scheduled_recheck_verifies_a_due_domain(
    org: NewOrganization, table: Table, dns_server: AuthoritativeDns
) -> None:
    due = add_domain(org, "example.com")
    later = add_domain(org, "sub.example.com")
    dns_server.serve(records_from_requirements(requirements(org, due["id"]) + requirements(org, later["id"])))
    past = clock.isoformat(clock.utcnow() - timedelta(minutes=1))
    domain_store.update(
        table,
        org.organization["id"],
        due["id"],
        {"next_check_at": past, **domain_store.recheck_keys(due["id"], past)},
    )
    event = load_event("eventbridge_scheduled.json")
    counts = function_module("dns_recheck").handler(event, LambdaContext(function_name="dns_recheck"))
    assert counts == {"checked": 1, "verified": 1, "errors": 0}
    assert domain_store.get(table, org.organization["id"], due["id"])["status"] == "verified"  # type: ignore[index]
    assert domain_store.get(table, org.organization["id"], later["id"])["status"] == "pending"  # type: ignore[index]
    assert len(verified_events(table, org)) == 1
    # Verified: next check a day later, so an immediate second run checks nothing.
    assert function_module("dns_recheck").handler(event, LambdaContext())["checked"] == 0


def test_recheck_backs_off_for_long_pending_domains(
    org: NewOrganization, table: Table, dns_server: AuthoritativeDns
) -> None:
    domain = add_domain(org)
    old = clock.isoformat(clock.utcnow() - timedelta(days=3))
    domain_store.update(table, org.organization["id"], domain["id"], {"created_at": old})
    check = recheck(org, domain["id"], "old")
    assert check["result"] == "failed"  # past the 72 h grace
    stored = domain_store.get(table, org.organization["id"], domain["id"])
    assert stored is not None
    gap = clock.parse_iso(stored["next_check_at"]) - clock.parse_iso(stored["last_checked_at"])
    assert gap == timedelta(hours=6)


def test_delete_refuses_while_mailboxes_remain(
    org: NewOrganization, other_org: NewOrganization, table: Table
) -> None:
    domain = add_domain(org)
    domain_store.update(table, org.organization["id"], domain["id"], {"mailbox_count": 1})
    refused = call("domains", "DELETE", f"/api/v1/domains/{domain['id']}", token=org.admin_token)
    assert refused.status == 409 and refused.error_code == "domain_not_empty"
    domain_store.update(table, org.organization["id"], domain["id"], {"mailbox_count": 0})
    gone = call("domains", "DELETE", f"/api/v1/domains/{domain['id']}", token=org.admin_token)
    assert gone.status == 204
    assert call("domains", "GET", f"/api/v1/domains/{domain['id']}", token=org.admin_token).status == 404
    identities = aws.client("sesv2").list_email_identities()["EmailIdentities"]
    assert all(i["IdentityName"] != "example.com" for i in identities)
    assert organizations.get(table, org.organization["id"])["domain_count"] == 0  # type: ignore[index]
    # The name is free again, for anyone.
    assert post(other_org.admin_token, "/api/v1/domains", {"domain": "example.com"}).status == 201


def test_dkim_rotation_changes_selector_and_key(org: NewOrganization) -> None:
    domain = add_domain(org)
    rotated = post(org.admin_token, f"/api/v1/domains/{domain['id']}/dkim:retry", key="rot")
    assert rotated.status == 200
    data = rotated.json()["data"]
    assert data["dkim_selector"] != domain["dkim_selector"]
    old_dkim = next(r for r in domain["dns_records"] if r["purpose"] == "dkim")
    new_dkim = next(r for r in data["dns_records"] if r["purpose"] == "dkim")
    assert new_dkim["name"] != old_dkim["name"] and new_dkim["value"] != old_dkim["value"]
    assert new_dkim["status"] == "MISSING"
    identity = aws.client("sesv2").get_email_identity(EmailIdentity="example.com")
    assert identity["DkimAttributes"]["Tokens"] == [data["dkim_selector"]]


def test_catch_all_and_note(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org)
    path = f"/api/v1/domains/{domain['id']}"

    def patch(suffix: str, body: Any) -> Any:
        return call("domains", "PATCH", path + suffix, token=org.admin_token, json_body=body)

    external = patch("/catch-all", {"catch_all": "Ops@Elsewhere.NET"})
    assert external.status == 200 and external.json()["data"]["catch_all"] == "Ops@elsewhere.net"
    unknown = patch("/catch-all", {"catch_all": "nobody@example.com"})
    assert unknown.status == 422 and unknown.error_code == "unknown_target"
    table.put(
        {
            "PK": f"ORG#{org.organization['id']}",
            "SK": "ADDR#inbox@example.com",
            "kind": "mailbox",
            "id": "mbx_1",
        }
    )
    assert (
        patch("/catch-all", {"catch_all": "inbox@example.com"}).json()["data"]["catch_all"]
        == "inbox@example.com"
    )
    assert patch("/catch-all", {"catch_all": "not an address"}).status == 422
    assert patch("/catch-all", {"catch_all": None}).json()["data"]["catch_all"] is None
    assert patch("/note", {"note": "billing: team A"}).json()["data"]["note"] == "billing: team A"
    assert patch("/note", {"note": "x" * 2001}).status == 422


def test_update_limits(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org)
    path = f"/api/v1/domains/{domain['id']}"
    updated = call(
        "domains",
        "PATCH",
        path,
        token=org.admin_token,
        json_body={"mailboxes": 3, "description": "renamed", "active": False},
    )
    data = updated.json()["data"]
    assert (data["mailboxes"], data["description"], data["active"]) == (3, "renamed", False)
    assert call("domains", "PATCH", path, token=org.admin_token, json_body={"defquota": 999999}).status == 422
    domain_store.update(table, org.organization["id"], domain["id"], {"mailbox_count": 2})
    below = call("domains", "PATCH", path, token=org.admin_token, json_body={"mailboxes": 1})
    assert below.status == 422


def test_bulk_add_is_validated_as_a_whole(
    org: NewOrganization, other_org: NewOrganization, table: Table
) -> None:
    add_domain(other_org, "taken.example.com")
    batch = {
        "domains": [
            {"domain": "a.example.com"},
            {"domain": "b.example.com"},
            {"domain": "A.example.com"},
            {"domain": "taken.example.com"},
        ]
    }
    refused = post(org.admin_token, "/api/v1/domains:bulk-add", batch)
    assert refused.status == 422
    error = refused.json()["error"]
    assert error["code"] == "bulk_validation_failed"
    assert [r["status"] for r in error["rows"]] == ["valid", "valid", "invalid", "invalid"]
    assert [r["error"]["code"] for r in error["rows"][2:]] == ["duplicate_row", "domain_taken"]
    assert organizations.get(table, org.organization["id"])["domain_count"] == 0  # type: ignore[index]

    malformed = post(
        org.admin_token,
        "/api/v1/domains:bulk-add",
        {"domains": [{"domain": "ok.example.com"}, {"domain": "bad name"}]},
    )
    assert malformed.status == 422
    assert malformed.json()["error"]["fields"][0]["field"] == "domains.1.domain"

    created = post(
        org.admin_token,
        "/api/v1/domains:bulk-add",
        {"domains": [{"domain": "a.example.com"}, {"domain": "b.example.com", "mailboxes": 2}]},
    )
    assert created.status == 201
    body = created.json()
    assert body["meta"] == {"created": 2, "failed": 0}
    assert [r["data"]["domain"] for r in body["data"]] == ["a.example.com", "b.example.com"]
    listed = call("domains", "GET", "/api/v1/domains", token=org.admin_token).json()
    assert listed["meta"]["total"] == 2
    too_many = post(
        org.admin_token,
        "/api/v1/domains:bulk-add",
        {"domains": [{"domain": f"d{i}.example.com"} for i in range(51)]},
    )
    assert too_many.status == 422


def test_spam_metrics_count_what_flows(org: NewOrganization, table: Table) -> None:
    domain = add_domain(org)
    path = f"/api/v1/domains/{domain['id']}/spam-metrics"
    assert call("domains", "GET", path, token=org.admin_token).json()["data"] == []
    summary = call("domains", "GET", path + "/summary", token=org.admin_token).json()["data"]
    assert summary["inbound_total"] == 0 and summary["spam_rate"] == 0.0
    today = clock.utcnow().date().isoformat()
    domain_metrics.increment(
        table,
        org.organization["id"],
        domain["id"],
        today,
        inbound_total=10,
        inbound_spam=2,
        outbound_total=4,
        outbound_bounces=1,
    )
    days = call("domains", "GET", path, token=org.admin_token, query={"days": 7}).json()["data"]
    assert days == [
        {
            "date": today,
            "inbound_total": 10,
            "inbound_spam": 2,
            "inbound_virus": 0,
            "inbound_dropped": 0,
            "outbound_total": 4,
            "outbound_bounces": 1,
            "outbound_complaints": 0,
        }
    ]
    summary = call("domains", "GET", path + "/summary", token=org.admin_token).json()["data"]
    assert (summary["spam_rate"], summary["bounce_rate"], summary["complaint_rate"]) == (0.2, 0.25, 0.0)
    assert call("domains", "GET", path, token=org.admin_token, query={"days": 366}).status == 422


def test_domains_are_isolated_and_scoped(org: NewOrganization, other_org: NewOrganization) -> None:
    domain = add_domain(org)
    for method, suffix in [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/dns-requirements"),
        ("PATCH", "/note"),
        ("GET", "/spam-metrics"),
        ("GET", "/spam-metrics/summary"),
    ]:
        body = {"note": "x"} if method == "PATCH" else None
        response = call(
            "domains",
            method,
            f"/api/v1/domains/{domain['id']}{suffix}",
            token=other_org.admin_token,
            json_body=body,
        )
        assert response.status == 404, (method, suffix)
    assert post(other_org.admin_token, f"/api/v1/domains/{domain['id']}/dns-recheck").status == 404
    assert post(other_org.admin_token, f"/api/v1/domains/{domain['id']}/dkim:retry").status == 404
    assert call("domains", "GET", "/api/v1/domains", token=other_org.admin_token).json()["data"] == []
    reader = call(
        "tokens",
        "POST",
        "/api/v1/tokens",
        token=org.admin_token,
        headers={"Idempotency-Key": "rd"},
        json_body={"name": "r", "scopes": ["domains:read"]},
    ).json()["data"]["token"]
    assert call("domains", "GET", "/api/v1/domains", token=reader).status == 200
    denied = post(reader, "/api/v1/domains", {"domain": "other.example.com"})
    assert denied.status == 403 and denied.error_code == "insufficient_scope"
    audit = call(
        "audit", "GET", "/api/v1/audit-log", token=org.admin_token, query={"action": "domain.create"}
    ).json()
    # Newest first: the reader's refused attempt is audited too, without a target.
    assert [(r["outcome"]["status"], (r["target"] or {}).get("domain")) for r in audit["data"]] == [
        (403, None),
        (201, "example.com"),
    ]

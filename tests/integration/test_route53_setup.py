"""/api/v1/route53: zones, connect, preview and apply against Route 53 (moto), through the API
function; the records written are read back with boto3 and served by a real DNS server to verify
the domain."""

from __future__ import annotations

import itertools
from typing import Any

import boto3
import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.services.tokens import issue_ops_token
from mailroom.settings import get_settings
from mailroom.store.table import Table
from tests.support.dns_server import AuthoritativeDns, ZoneRecord
from tests.support.lambda_api import Result, call

_keys = itertools.count()
DOMAIN = "example.com"  # the dns_server fixture serves this zone


def post(token: str, path: str, body: Any, function: str = "route53") -> Result:
    return call(
        function, "POST", path, token=token, json_body=body, headers={"Idempotency-Key": f"r53-{next(_keys)}"}
    )


@pytest.fixture
def own_account(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_ROUTE53_OWN_ACCOUNT", "1")
    get_settings.cache_clear()


@pytest.fixture
def route53(own_account: None) -> Any:
    return boto3.client("route53", region_name="us-east-1")


def hosted_zone(route53: Any, name: str = DOMAIN) -> str:
    zone = route53.create_hosted_zone(Name=name, CallerReference=f"ref-{next(_keys)}")
    return str(zone["HostedZone"]["Id"].rsplit("/", 1)[-1])


def put_records(route53: Any, zone_id: str, name: str, type_: str, values: list[str], ttl: int = 300) -> None:
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": type_,
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": v} for v in values],
                    },
                }
            ]
        },
    )


def record_sets(route53: Any, zone_id: str) -> dict[tuple[str, str], list[str]]:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        (s["Name"].rstrip("."), s["Type"]): sorted(r["Value"] for r in s.get("ResourceRecords", []))
        for s in sets
        if s["Type"] in ("MX", "TXT")
    }


def add_domain(org: NewOrganization, name: str = DOMAIN) -> dict[str, Any]:
    created = post(org.admin_token, "/api/v1/domains", {"domain": name}, function="domains")
    assert created.status == 201, created.body
    return created.json()["data"]  # type: ignore[no-any-return]


def connect(org: NewOrganization, domain_id: str, zone_id: str, **extra: Any) -> Result:
    return post(
        org.admin_token, "/api/v1/route53/connect", {"domain_id": domain_id, "zone_id": zone_id, **extra}
    )


def preview(org: NewOrganization, domain_id: str, **extra: Any) -> dict[str, Any]:
    response = post(org.admin_token, "/api/v1/route53/preview", {"domain_id": domain_id, **extra})
    assert response.status == 201, response.body
    return response.json()["data"]  # type: ignore[no-any-return]


def apply(org: NewOrganization, preview_id: str) -> Result:
    return post(org.admin_token, "/api/v1/route53/apply", {"preview_id": preview_id})


def test_apply_publishes_the_records_and_applying_again_changes_nothing(
    org: NewOrganization, route53: Any, dns_server: AuthoritativeDns
) -> None:
    zone_id = hosted_zone(route53)
    put_records(route53, zone_id, DOMAIN, "TXT", ['"google-site-verification=abc"'])
    zones = post(org.admin_token, "/api/v1/route53/zones", {})
    assert zones.status == 200
    assert [(z["id"], z["name"], z["private"]) for z in zones.json()["data"]] == [(zone_id, DOMAIN, False)]
    domain = add_domain(org)
    connected = connect(org, domain["id"], zone_id)
    assert connected.status == 201, connected.body
    assert connected.json()["data"]["zone_name"] == DOMAIN

    planned = preview(org, domain["id"])
    assert planned["summary"] == {"create": 5, "update": 0, "unchanged": 0, "conflict": 0}
    assert [c["action"] for c in planned["changes"]] == ["create"] * 5
    applied = apply(org, planned["id"])
    assert applied.status == 200, applied.body
    result = applied.json()["data"]
    assert {c["outcome"] for c in result["changes"]} == {"made"}
    assert result["domain_status"] == "pending"  # the DNS server does not serve them yet

    sets = record_sets(route53, zone_id)
    region = get_settings().region
    assert sets[(DOMAIN, "MX")] == [f"10 inbound-smtp.{region}.amazonaws.com."]
    assert sets[(f"bounce.{DOMAIN}", "MX")] == [f"10 feedback-smtp.{region}.amazonses.com."]
    assert sets[(f"bounce.{DOMAIN}", "TXT")] == ['"v=spf1 include:amazonses.com ~all"']
    assert sets[(DOMAIN, "TXT")] == ['"google-site-verification=abc"']  # untouched
    dkim = sets[(f"{domain['dkim_selector']}._domainkey.{DOMAIN}", "TXT")]
    assert len(dkim) == 1 and dkim[0].count('" "') >= 1  # a 2048-bit key needs two 255-octet strings

    # The same preview again: the same answer, nothing written.
    assert apply(org, planned["id"]).json()["data"] == result
    assert record_sets(route53, zone_id) == sets
    # A new preview finds everything in place.
    again = preview(org, domain["id"])
    assert again["summary"] == {"create": 0, "update": 0, "unchanged": 5, "conflict": 0}
    assert again["changes"] == []

    # Served as written, the records verify the domain.
    served = [
        ZoneRecord(name=n, type=t, value=_plain(t, v), priority=_priority(t, v))
        for (n, t), values in sets.items()
        for v in values
    ]
    dns_server.serve(served)
    check = post(org.admin_token, f"/api/v1/domains/{domain['id']}/dns-recheck", None, function="domains")
    assert check.json()["data"]["result"] == "verified", check.body


def _plain(type_: str, value: str) -> str:
    if type_ == "MX":
        return value.split()[1].rstrip(".")
    return "".join(part.strip('"') for part in value.split('" "'))


def _priority(type_: str, value: str) -> int | None:
    return int(value.split(maxsplit=1)[0]) if type_ == "MX" else None


def test_existing_spf_is_merged_and_another_mx_set_is_left_alone(
    org: NewOrganization, route53: Any, dns_server: AuthoritativeDns
) -> None:
    zone_id = hosted_zone(route53)
    google_mx = ["1 aspmx.l.google.com.", "5 alt1.aspmx.l.google.com."]
    put_records(route53, zone_id, DOMAIN, "MX", google_mx)
    put_records(
        route53, zone_id, f"bounce.{DOMAIN}", "TXT", ['"v=spf1 include:_spf.google.com ~all"', '"other"']
    )
    domain = add_domain(org)
    assert connect(org, domain["id"], zone_id).status == 201
    planned = preview(org, domain["id"])
    records = {r["purpose"]: r for r in planned["records"]}
    assert records["inbound_mx"]["action"] == "conflict"
    assert records["spf"]["action"] == "update"
    assert records["spf"]["value"] == "v=spf1 include:_spf.google.com include:amazonses.com ~all"
    assert apply(org, planned["id"]).status == 200
    sets = record_sets(route53, zone_id)
    assert sets[(DOMAIN, "MX")] == sorted(google_mx)  # a conflict changes nothing
    assert sets[(f"bounce.{DOMAIN}", "TXT")] == sorted(
        ['"v=spf1 include:_spf.google.com include:amazonses.com ~all"', '"other"']
    )

    replacing = preview(org, domain["id"], replace_mx=True)
    assert [(c["action"], c["content"]) for c in replacing["changes"]] == [
        ("update", f"inbound-smtp.{get_settings().region}.amazonaws.com"),
        ("delete", "alt1.aspmx.l.google.com"),
    ]
    assert apply(org, replacing["id"]).status == 200
    assert record_sets(route53, zone_id)[(DOMAIN, "MX")] == [
        f"10 inbound-smtp.{get_settings().region}.amazonaws.com."
    ]


def test_a_zone_changed_between_preview_and_apply_is_409(
    org: NewOrganization, route53: Any, dns_server: AuthoritativeDns
) -> None:
    zone_id = hosted_zone(route53)
    domain = add_domain(org)
    assert connect(org, domain["id"], zone_id).status == 201
    planned = preview(org, domain["id"])
    put_records(route53, zone_id, f"_dmarc.{DOMAIN}", "TXT", ['"v=DMARC1; p=reject"'])
    refused = apply(org, planned["id"])
    assert refused.status == 409
    assert refused.json()["error"]["code"] == "zone_changed"
    assert (f"bounce.{DOMAIN}", "MX") not in record_sets(route53, zone_id)  # nothing written
    # A change elsewhere in the zone does not matter.
    fresh = preview(org, domain["id"])
    put_records(route53, zone_id, f"www.{DOMAIN}", "TXT", ['"hello"'])
    assert apply(org, fresh["id"]).status == 200


def test_a_record_set_changed_during_apply_refuses_the_whole_batch(
    org: NewOrganization, route53: Any, dns_server: AuthoritativeDns
) -> None:
    """Between apply's read of the zone and its change batch, someone adds a value to the SPF set
    apply replaces: Route 53 refuses the batch (its DELETE no longer matches), nothing is written,
    and the other value survives."""
    from mailroom.store import aws

    zone_id = hosted_zone(route53)
    spf = f"bounce.{DOMAIN}"
    put_records(route53, zone_id, spf, "TXT", ['"v=spf1 include:_spf.google.com ~all"'])
    domain = add_domain(org)
    assert connect(org, domain["id"], zone_id).status == 201
    planned = preview(org, domain["id"])
    assert planned["summary"]["update"] == 1

    def meanwhile(**_: Any) -> None:
        aws.raw_client("route53").meta.events.unregister(
            "before-call.route53.ChangeResourceRecordSets", meanwhile
        )
        put_records(
            route53, zone_id, spf, "TXT", ['"v=spf1 include:_spf.google.com ~all"', '"verification=1"']
        )

    aws.raw_client("route53").meta.events.register("before-call.route53.ChangeResourceRecordSets", meanwhile)
    refused = apply(org, planned["id"])
    assert (refused.status, refused.json()["error"]["code"]) == (409, "zone_changed")
    sets = record_sets(route53, zone_id)
    assert sets[(spf, "TXT")] == ['"v=spf1 include:_spf.google.com ~all"', '"verification=1"']
    assert (DOMAIN, "MX") not in sets  # the batch's other changes were not made either
    # Previewed again, the SPF record is merged and the other value kept.
    assert apply(org, preview(org, domain["id"])["id"]).status == 200
    assert record_sets(route53, zone_id)[(spf, "TXT")] == [
        '"v=spf1 include:_spf.google.com include:amazonses.com ~all"',
        '"verification=1"',
    ]


def test_preview_rules_connect_checks_and_scopes(
    org: NewOrganization,
    other_org: NewOrganization,
    route53: Any,
    table: Table,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    zone_id = hosted_zone(route53)
    other_zone = hosted_zone(route53, "example.org")
    domain = add_domain(org)
    unconnected = post(org.admin_token, "/api/v1/route53/preview", {"domain_id": domain["id"]})
    assert (unconnected.status, unconnected.json()["error"]["code"]) == (409, "not_connected")
    mismatch = connect(org, domain["id"], other_zone)
    assert (mismatch.status, mismatch.json()["error"]["code"]) == (422, "zone_mismatch")
    missing = connect(org, domain["id"], "Z0000000000000000000")
    assert (missing.status, missing.json()["error"]["code"]) == (422, "zone_not_found")
    # Another organization's domain is not found; its previews neither.
    assert connect(other_org, domain["id"], zone_id).status == 404
    assert connect(org, domain["id"], zone_id).status == 201
    planned = preview(org, domain["id"])
    assert apply(other_org, planned["id"]).status == 404
    assert (
        post(org.admin_token, "/api/v1/cloudflare/apply", {"preview_id": planned["id"]}, "cloudflare").status
        == 404
    )
    # Scopes: route53:read previews, route53:write connects and applies.
    reader = issue_ops_token(
        table, org_id=org.organization["id"], name="reader", scopes=["route53:read"], created_by=None
    ).plaintext
    assert post(reader, "/api/v1/route53/preview", {"domain_id": domain["id"]}).status == 201
    assert post(reader, "/api/v1/route53/apply", {"preview_id": planned["id"]}).status == 403
    # Bad input is 422, never a 500.
    assert (
        post(org.admin_token, "/api/v1/route53/preview", {"domain_id": domain["id"], "extra": 1}).status
        == 422
    )
    assert post(org.admin_token, "/api/v1/route53/zones", {"role_arn": "not-an-arn"}).status == 422
    # The stack's own account only when the operator allows it.
    monkeypatch.setenv("MAILROOM_ROUTE53_OWN_ACCOUNT", "0")
    get_settings.cache_clear()
    refused = post(org.admin_token, "/api/v1/route53/zones", {})
    assert (refused.status, refused.json()["error"]["code"]) == (422, "role_arn_required")


def test_a_cross_account_role_is_assumed_with_the_organization_as_external_id(
    org: NewOrganization, route53: Any, dns_server: AuthoritativeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailroom.store import aws

    monkeypatch.setenv("MAILROOM_ROUTE53_OWN_ACCOUNT", "0")
    get_settings.cache_clear()
    zone_id = hosted_zone(route53)
    role_arn = "arn:aws:iam::123456789012:role/mailroom-dns"
    assumed: list[dict[str, Any]] = []
    sts = aws.client("sts")
    real = sts.assume_role

    def recording(**kwargs: Any) -> Any:
        assumed.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(sts, "assume_role", recording)
    listed = post(org.admin_token, "/api/v1/route53/zones", {"role_arn": role_arn, "name": DOMAIN})
    assert listed.status == 200, listed.body
    assert [z["id"] for z in listed.json()["data"]] == [zone_id]
    domain = add_domain(org)
    assert connect(org, domain["id"], zone_id, role_arn=role_arn).json()["data"]["role_arn"] == role_arn
    assert apply(org, preview(org, domain["id"])["id"]).status == 200
    assert {a["ExternalId"] for a in assumed} == {org.organization["id"]}
    assert {a["RoleArn"] for a in assumed} == {role_arn}

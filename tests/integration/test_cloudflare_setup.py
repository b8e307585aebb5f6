"""/api/v1/cloudflare: token checks, zones, connect, preview, apply and stored tokens, through the
API function and the real ``cloudflare`` SDK against a local Cloudflare API v4 (tests/support)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.services.tokens import issue_ops_token
from mailroom.settings import get_settings
from mailroom.store import keys
from mailroom.store.table import Table
from tests.support.cloudflare_api import CloudflareApi
from tests.support.cloudflare_schema import request_problems, response_problems
from tests.support.dns_server import AuthoritativeDns
from tests.support.lambda_api import Result, call

_keys = itertools.count()
DOMAIN = "example.com"


@pytest.fixture
def cf(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudflareApi]:
    """The local Cloudflare API, and the stack's KMS key (tokens are sealed with it)."""
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="mailroom secrets")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/mailroom-test", TargetKeyId=key_id)
    with CloudflareApi() as api:
        monkeypatch.setenv("MAILROOM_KMS_KEY_ID", "alias/mailroom-test")
        monkeypatch.setenv("MAILROOM_CLOUDFLARE_API_URL", api.base_url)
        get_settings.cache_clear()
        yield api
    get_settings.cache_clear()
    # Whatever the test did, the SDK asked and the local API answered as Cloudflare's schema says.
    problems = [p for seen in api.history for p in request_problems(seen) + response_problems(seen)]
    assert not problems, "\n".join(problems)


def post(token: str, path: str, body: Any, function: str = "cloudflare") -> Result:
    return call(
        function, "POST", path, token=token, json_body=body, headers={"Idempotency-Key": f"cf-{next(_keys)}"}
    )


def add_domain(org: NewOrganization, name: str = DOMAIN) -> dict[str, Any]:
    created = post(org.admin_token, "/api/v1/domains", {"domain": name}, function="domains")
    assert created.status == 201, created.body
    return created.json()["data"]  # type: ignore[no-any-return]


def connected(org: NewOrganization, cf: CloudflareApi) -> tuple[dict[str, Any], str, str]:
    """A domain connected to its zone: (domain, zone id, Cloudflare token)."""
    zone_id = cf.add_zone(DOMAIN)
    token = cf.add_token(zones=[zone_id])
    domain = add_domain(org)
    response = post(
        org.admin_token,
        "/api/v1/cloudflare/connect",
        {"domain_id": domain["id"], "zone_id": zone_id, "token": token},
    )
    assert response.status == 201, response.body
    return domain, zone_id, token


def preview(org: NewOrganization, domain_id: str, **extra: Any) -> dict[str, Any]:
    response = post(org.admin_token, "/api/v1/cloudflare/preview", {"domain_id": domain_id, **extra})
    assert response.status == 201, response.body
    return response.json()["data"]  # type: ignore[no-any-return]


def apply(org: NewOrganization, preview_id: str) -> Result:
    return post(org.admin_token, "/api/v1/cloudflare/apply", {"preview_id": preview_id})


def zone_state(cf: CloudflareApi, zone_id: str) -> list[tuple[str, str, str, Any]]:
    return sorted((r["type"], r["name"], r["content"], r.get("priority")) for r in cf.records(zone_id))


def writes(cf: CloudflareApi) -> list[str]:
    return [
        f"{s.method} {s.path.rsplit('/', 1)[-1] if s.method != 'POST' else 'dns_records'}"
        for s in cf.requests
        if s.method != "GET"
    ]


def test_token_checks_and_zones(org: NewOrganization, cf: CloudflareApi) -> None:
    zone_id = cf.add_zone(DOMAIN)
    cf.add_zone("example.org")
    token = cf.add_token(zones=[zone_id])
    valid = post(org.admin_token, "/api/v1/cloudflare/validate-token", {"token": token})
    assert valid.status == 200
    assert valid.json()["data"] | {"cloudflare_token_id": None} == {
        "valid": True,
        "status": "active",
        "cloudflare_token_id": None,
        "expires_on": None,
    }
    unknown = post(org.admin_token, "/api/v1/cloudflare/validate-token", {"token": "x" * 40})
    assert unknown.json()["data"]["valid"] is False
    disabled = post(
        org.admin_token, "/api/v1/cloudflare/validate-token", {"token": cf.add_token(status="disabled")}
    )
    assert disabled.json()["data"] | {"cloudflare_token_id": None} == {
        "valid": False,
        "status": "disabled",
        "cloudflare_token_id": None,
        "expires_on": None,
    }
    zones = post(org.admin_token, "/api/v1/cloudflare/zones", {"token": token})
    assert [(z["id"], z["name"], z["status"]) for z in zones.json()["data"]] == [(zone_id, DOMAIN, "active")]
    refused = post(org.admin_token, "/api/v1/cloudflare/zones", {"token": "y" * 40})
    assert (refused.status, refused.json()["error"]["code"]) == (422, "cloudflare_token_invalid")
    both = post(org.admin_token, "/api/v1/cloudflare/zones", {"token": token, "token_id": "cft_x"})
    assert both.status == 422
    # The SDK asked as Cloudflare's API expects: a bearer token, its paths and paging parameters.
    paths = [(s.method, s.path.removeprefix("/client/v4")) for s in cf.requests]
    assert ("GET", "/user/tokens/verify") in paths and ("GET", "/zones") in paths


def test_connect_seals_the_token_and_lists_it_by_prefix_only(
    org: NewOrganization, cf: CloudflareApi, table: Table
) -> None:
    domain, zone_id, token = connected(org, cf)
    listed = call("cloudflare", "GET", "/api/v1/cloudflare/tokens", token=org.admin_token)
    assert listed.status == 200
    (stored,) = listed.json()["data"]
    assert stored["token_prefix"] == token[:6]
    assert token not in listed.body.decode()
    assert listed.json()["meta"]["total"] == 1
    item = table.get(keys.org_pk(org.organization["id"]), keys.cloudflare_token_sk(stored["id"]))
    assert item is not None
    assert token.encode() not in repr(item).encode()  # only the KMS ciphertext is kept
    # A stored token connects by id, and lists zones by id.
    again = post(
        org.admin_token,
        "/api/v1/cloudflare/connect",
        {"domain_id": domain["id"], "zone_id": zone_id, "token_id": stored["id"]},
    )
    assert again.status == 201 and again.json()["data"]["token_id"] == stored["id"]
    by_id = post(org.admin_token, "/api/v1/cloudflare/zones", {"token_id": stored["id"]})
    assert [z["id"] for z in by_id.json()["data"]] == [zone_id]
    # A zone the token cannot see, and a zone that does not hold the domain.
    other = cf.add_zone("example.org")
    hidden = post(
        org.admin_token,
        "/api/v1/cloudflare/connect",
        {"domain_id": domain["id"], "zone_id": other, "token": token},
    )
    assert (hidden.status, hidden.json()["error"]["code"]) == (422, "zone_not_found")
    wide = cf.add_token()
    mismatch = post(
        org.admin_token,
        "/api/v1/cloudflare/connect",
        {"domain_id": domain["id"], "zone_id": other, "token": wide},
    )
    assert (mismatch.status, mismatch.json()["error"]["code"]) == (422, "zone_mismatch")
    # A connect that fails keeps no token.
    assert [
        t["id"]
        for t in call("cloudflare", "GET", "/api/v1/cloudflare/tokens", token=org.admin_token).json()["data"]
    ] == [stored["id"]]
    # Deleting the token disconnects the domain: previews need a new connection.
    deleted = call("cloudflare", "DELETE", f"/api/v1/cloudflare/tokens/{stored['id']}", token=org.admin_token)
    assert deleted.status == 204
    assert (
        call(
            "cloudflare", "DELETE", f"/api/v1/cloudflare/tokens/{stored['id']}", token=org.admin_token
        ).status
        == 404
    )
    gone = post(org.admin_token, "/api/v1/cloudflare/preview", {"domain_id": domain["id"]})
    assert (gone.status, gone.json()["error"]["code"]) == (409, "not_connected")


def test_apply_creates_merges_and_applying_again_changes_nothing(
    org: NewOrganization, cf: CloudflareApi, dns_server: AuthoritativeDns
) -> None:
    domain, zone_id, _token = connected(org, cf)
    cf.add_record(zone_id, "TXT", f"bounce.{DOMAIN}", "v=spf1 include:_spf.google.com ~all")
    cf.add_record(zone_id, "TXT", DOMAIN, "google-site-verification=abc")
    planned = preview(org, domain["id"])
    assert planned["summary"] == {"create": 4, "update": 1, "unchanged": 0, "conflict": 0}
    (spf,) = [c for c in planned["changes"] if c["purpose"] == "spf"]
    assert (spf["action"], spf["previous_content"]) == ("update", "v=spf1 include:_spf.google.com ~all")
    cf.requests.clear()
    applied = apply(org, planned["id"])
    assert applied.status == 200, applied.body
    assert sorted(writes(cf)) == ["PATCH " + spf_id(cf, zone_id)] + ["POST dns_records"] * 4
    region = get_settings().region
    state = zone_state(cf, zone_id)
    assert ("MX", DOMAIN, f"inbound-smtp.{region}.amazonaws.com", 10) in state
    assert (
        "TXT",
        f"bounce.{DOMAIN}",
        "v=spf1 include:_spf.google.com include:amazonses.com ~all",
        None,
    ) in state
    assert len([r for r in state if r[1] == f"bounce.{DOMAIN}" and r[0] == "TXT"]) == 1  # one SPF record
    assert ("TXT", DOMAIN, "google-site-verification=abc", None) in state
    assert all(r["comment"] == f"Mailroom: {r_purpose}" for r, r_purpose in created_comments(cf, zone_id))

    cf.requests.clear()
    assert apply(org, planned["id"]).json()["data"] == applied.json()["data"]
    assert writes(cf) == []  # the same preview again writes nothing
    again = preview(org, domain["id"])
    assert again["summary"] == {"create": 0, "update": 0, "unchanged": 5, "conflict": 0}


def spf_id(cf: CloudflareApi, zone_id: str) -> str:
    return next(r["id"] for r in cf.records(zone_id) if r["content"].startswith("v=spf1"))


def created_comments(cf: CloudflareApi, zone_id: str) -> list[tuple[dict[str, Any], str]]:
    purposes = {"MX": {DOMAIN: "inbound_mx", f"bounce.{DOMAIN}": "mail_from_mx"}}
    found = []
    for record in cf.records(zone_id):
        if record.get("comment") is None:
            continue
        if record["type"] == "MX":
            found.append((record, purposes["MX"][record["name"]]))
        else:
            found.append((record, "dkim" if "_domainkey" in record["name"] else "dmarc"))
    return found


def test_conflicting_mx_is_left_alone_unless_replace_mx(
    org: NewOrganization, cf: CloudflareApi, dns_server: AuthoritativeDns
) -> None:
    domain, zone_id, _token = connected(org, cf)
    cf.add_record(zone_id, "MX", DOMAIN, "aspmx.l.google.com", priority=1)
    cf.add_record(zone_id, "MX", DOMAIN, "alt1.aspmx.l.google.com", priority=5)
    planned = preview(org, domain["id"])
    (mx,) = [r for r in planned["records"] if r["purpose"] == "inbound_mx"]
    assert mx["action"] == "conflict" and mx["current"] == [
        "1 aspmx.l.google.com",
        "5 alt1.aspmx.l.google.com",
    ]
    assert apply(org, planned["id"]).status == 200
    assert [r[2] for r in zone_state(cf, zone_id) if r[0] == "MX" and r[1] == DOMAIN] == [
        "alt1.aspmx.l.google.com",
        "aspmx.l.google.com",
    ]
    replacing = preview(org, domain["id"], replace_mx=True)
    assert [c["action"] for c in replacing["changes"]] == ["update", "delete"]
    assert apply(org, replacing["id"]).status == 200
    region = get_settings().region
    assert [r[2:] for r in zone_state(cf, zone_id) if r[0] == "MX" and r[1] == DOMAIN] == [
        (f"inbound-smtp.{region}.amazonaws.com", 10)
    ]


def test_a_changed_zone_is_409_and_an_interrupted_apply_finishes_on_retry(
    org: NewOrganization, cf: CloudflareApi, dns_server: AuthoritativeDns
) -> None:
    domain, zone_id, _token = connected(org, cf)
    planned = preview(org, domain["id"])
    record_id = cf.add_record(zone_id, "TXT", f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject")
    refused = apply(org, planned["id"])
    assert (refused.status, refused.json()["error"]["code"]) == (409, "zone_changed")
    assert zone_state(cf, zone_id) == [("TXT", f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject", None)]

    cf.delete_record(zone_id, record_id)
    fresh = preview(org, domain["id"])
    # The first create goes through, then Cloudflare fails (twice: the SDK retries once).
    cf.fail_next("POST", "/dns_records", status=500, skip=1, times=2)
    broken = apply(org, fresh["id"])
    assert (broken.status, broken.json()["error"]["code"]) == (503, "provider_unavailable")
    assert broken.json()["error"]["retryable"] is True
    assert len(cf.records(zone_id)) == 1
    finished = apply(org, fresh["id"])
    assert finished.status == 200, finished.body
    outcomes = [c["outcome"] for c in finished.json()["data"]["changes"]]
    assert outcomes == ["already_made", "made", "made", "made", "made"]
    assert preview(org, domain["id"])["summary"]["unchanged"] == 5


def test_other_organizations_scopes_and_expiry(
    org: NewOrganization,
    other_org: NewOrganization,
    cf: CloudflareApi,
    table: Table,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    domain, zone_id, _token = connected(org, cf)
    planned = preview(org, domain["id"])
    assert apply(other_org, planned["id"]).status == 404
    assert (
        post(other_org.admin_token, "/api/v1/cloudflare/preview", {"domain_id": domain["id"]}).status == 404
    )
    (stored,) = call("cloudflare", "GET", "/api/v1/cloudflare/tokens", token=org.admin_token).json()["data"]
    assert (
        call(
            "cloudflare", "DELETE", f"/api/v1/cloudflare/tokens/{stored['id']}", token=other_org.admin_token
        ).status
        == 404
    )
    assert (
        call("cloudflare", "GET", "/api/v1/cloudflare/tokens", token=other_org.admin_token).json()["data"]
        == []
    )
    reader = issue_ops_token(
        table, org_id=org.organization["id"], name="reader", scopes=["cloudflare:read"], created_by=None
    ).plaintext
    assert post(reader, "/api/v1/cloudflare/preview", {"domain_id": domain["id"]}).status == 201
    assert post(reader, "/api/v1/cloudflare/apply", {"preview_id": planned["id"]}).status == 403
    assert (
        call("cloudflare", "DELETE", f"/api/v1/cloudflare/tokens/{stored['id']}", token=reader).status == 403
    )
    # An expired preview is 410; the zone is untouched.
    monkeypatch.setenv("MAILROOM_DNS_PREVIEW_TTL_SECONDS", "60")
    get_settings.cache_clear()
    from mailroom import clock

    expired = preview(org, domain["id"])
    later = clock.utcnow() + __import__("datetime").timedelta(seconds=61)
    monkeypatch.setattr(clock, "now_iso", lambda: clock.isoformat(later))
    gone = apply(org, expired["id"])
    assert (gone.status, gone.json()["error"]["code"]) == (410, "preview_expired")
    assert cf.records(zone_id) == []

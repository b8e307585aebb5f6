"""Email verification through the API: DNS from a real authoritative server (nsd), the SMTP probe
against a real SMTP server (aiosmtpd), credits in the table (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.domain.scopes import OPS_SCOPES
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import verification as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Table
from tests.support.dns_server import AuthoritativeDns, ZoneRecord
from tests.support.lambda_api import call
from tests.support.mailboxes import get, key, ok, post
from tests.support.smtp_target import SmtpTarget, TargetPolicy, free_tcp_port, smtp_target

ZONE = [
    ZoneRecord("example.com", "MX", "mx.example.com", 10),
    ZoneRecord("mx.example.com", "A", "127.0.0.1"),
    ZoneRecord("catchall.example.com", "MX", "mx.example.com", 10),
    ZoneRecord("grey.example.com", "MX", "mx.example.com", 10),
    ZoneRecord("aonly.example.com", "A", "127.0.0.1"),
    ZoneRecord("txtonly.example.com", "TXT", "v=spf1 -all"),
    ZoneRecord("nullmx.example.com", "MX", "", 0),
]


@pytest.fixture
def zone(dns_server: AuthoritativeDns) -> AuthoritativeDns:
    dns_server.serve(ZONE)
    return dns_server


@pytest.fixture
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpTarget]:
    policy = TargetPolicy(
        mailboxes={"alice@example.com", "info@example.com"},
        catch_all_domains={"catchall.example.com"},
        greylisting_domains={"grey.example.com"},
    )
    with smtp_target(tmp_path_factory.mktemp("smtp-target"), policy) as server:
        yield server


@pytest.fixture
def probing(target: SmtpTarget, zone: AuthoritativeDns, monkeypatch: pytest.MonkeyPatch) -> SmtpTarget:
    monkeypatch.setenv("MAILROOM_VERIFY_SMTP_PROBE", "1")
    monkeypatch.setenv("MAILROOM_VERIFY_PROBE_PORT", str(target.port))
    monkeypatch.setenv("MAILROOM_VERIFY_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("MAILROOM_VERIFY_PROBE_SENDER", "probe@verifier.example.net")
    get_settings.cache_clear()
    return target


def verify(org: NewOrganization, email: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = ok(post("verify", org.admin_token, "/api/v1/verify", {"email": email, **extra}))
    return result


def reasons(result: dict[str, Any]) -> list[str]:
    return [r["code"] for r in result["reasons"]]


def token(org: NewOrganization, scopes: list[str]) -> str:
    created = ok(post("tokens", org.admin_token, "/api/v1/tokens", {"name": "t", "scopes": scopes}), 201)
    return str(created["token"])


def credits(org: NewOrganization) -> dict[str, Any]:
    found: dict[str, Any] = ok(get("verify", org.admin_token, "/api/v1/verify/credits"))
    return found


def test_dns_outcomes(org: NewOrganization, zone: AuthoritativeDns) -> None:
    found = verify(org, "Alice@Example.COM")
    assert (found["status"], found["normalized"], found["email"]) == (
        "deliverable",
        "Alice@example.com",
        "Alice@Example.COM",
    )
    assert found["checks"] == {
        "syntax": True, "domain": True, "mx": True, "disposable": False, "role": False,
        "free_provider": False, "catch_all": None, "smtp": "not_requested",
    }  # fmt: skip
    assert found["reasons"] == [] and found["suggestion"] is None

    implicit = verify(org, "bob@aonly.example.com")
    assert implicit["status"] == "deliverable" and implicit["checks"]["mx"] is False
    assert reasons(implicit) == ["implicit_mx"]

    for email, code in [
        ("bob@txtonly.example.com", "no_mail_host"),
        ("bob@nullmx.example.com", "null_mx"),
        ("bob@nowhere.example.com", "domain_not_found"),
        ("not an address", "invalid_syntax"),
        ("bob@@example.com", "invalid_syntax"),
    ]:
        result = verify(org, email)
        assert (result["status"], reasons(result)[0]) == ("undeliverable", code), result
    assert verify(org, "bob@nowhere.example.com")["checks"]["domain"] is False
    assert verify(org, "not an address")["normalized"] is None

    role = verify(org, "Info+press@example.com")
    assert (role["status"], reasons(role), role["checks"]["role"]) == ("risky", ["role_account"], True)

    used = credits(org)
    assert used["used"] == 10 and used["remaining"] == used["allowance"] - 10
    assert used["verified"] == {"deliverable": 2, "undeliverable": 7, "risky": 1, "unknown": 0}


def test_names_checks_without_dns(org: NewOrganization, zone: AuthoritativeDns) -> None:
    """Disposable and typo checks come from the name: the zone server refuses other zones, so DNS is
    unavailable for them, which makes an otherwise plain address unknown, a disposable one risky."""
    disposable = verify(org, "someone@mailinator.com")
    assert disposable["status"] == "risky" and disposable["checks"]["disposable"] is True
    assert reasons(disposable) == ["dns_unavailable", "disposable"]

    typo = verify(org, "jane@gmial.com")
    assert typo["suggestion"] == "jane@gmail.com" and "possible_typo" in reasons(typo)

    free = verify(org, "Jane@GMAIL.com")
    assert free["checks"]["free_provider"] is True and free["suggestion"] is None
    assert free["status"] == "unknown" and reasons(free) == ["dns_unavailable"]

    idn = verify(org, "jörg@bücher.example.com")
    assert idn["normalized"] == "jörg@bücher.example.com" and idn["checks"]["domain"] is False


def test_smtp_probe(org: NewOrganization, probing: SmtpTarget) -> None:
    accepted = verify(org, "alice@example.com", smtp=True)
    assert accepted["status"] == "deliverable", accepted
    assert (accepted["checks"]["smtp"], accepted["checks"]["catch_all"]) == ("accepted", False)

    rejected = verify(org, "nobody@example.com", smtp=True)
    assert (rejected["status"], rejected["checks"]["smtp"]) == ("undeliverable", "rejected")
    assert reasons(rejected) == ["mailbox_rejected"]
    assert "550 5.1.1 <nobody@example.com>: Recipient address rejected" in rejected["reasons"][0]["message"]

    catch_all = verify(org, "whoever@catchall.example.com", smtp=True)
    assert (catch_all["status"], catch_all["checks"]["catch_all"]) == ("risky", True)
    assert reasons(catch_all) == ["catch_all"]

    grey = verify(org, "someone@grey.example.com", smtp=True)
    assert (grey["status"], grey["checks"]["smtp"]) == ("unknown", "unknown")
    assert reasons(grey) == ["smtp_temporary_failure"] and "450 4.2.0" in grey["reasons"][0]["message"]

    skipped = verify(org, "bob@txtonly.example.com", smtp=True)
    assert (skipped["status"], skipped["checks"]["smtp"]) == ("undeliverable", "skipped")

    sessions = probing.policy.sessions
    assert len(sessions) == 4  # no connection for the domain without a mail host
    assert all(
        s["tls"] and not s["data"] and s["mail_from"] == "probe@verifier.example.net" for s in sessions
    )
    assert sessions[0]["rcpt"][0] == "alice@example.com" and len(sessions[0]["rcpt"]) == 2
    decoy = sessions[0]["rcpt"][1]
    assert decoy.endswith("@example.com") and decoy != "alice@example.com"


def test_probe_disabled_unreachable_or_private(
    org: NewOrganization, zone: AuthoritativeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    disabled = verify(org, "alice@example.com", smtp=True)
    assert (disabled["status"], disabled["checks"]["smtp"]) == ("unknown", "unknown")
    assert reasons(disabled) == ["smtp_probe_disabled"]

    monkeypatch.setenv("MAILROOM_VERIFY_SMTP_PROBE", "1")
    monkeypatch.setenv("MAILROOM_VERIFY_PROBE_PORT", str(free_tcp_port()))  # nothing listens there
    get_settings.cache_clear()
    private = verify(org, "alice@example.com", smtp=True)
    assert reasons(private) == ["smtp_unreachable"]
    assert "127.0.0.1): not a public address (loopback)" in private["reasons"][0]["message"]

    monkeypatch.setenv("MAILROOM_VERIFY_ALLOW_PRIVATE", "1")
    get_settings.cache_clear()
    closed = verify(org, "alice@example.com", smtp=True)
    assert (closed["status"], reasons(closed)) == ("unknown", ["smtp_unreachable"])
    assert "port 25 may be blocked" in closed["reasons"][0]["message"]


def test_credits_run_out(
    org: NewOrganization, zone: AuthoritativeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILROOM_VERIFY_MONTHLY_CREDITS", "2")
    get_settings.cache_clear()
    headers = key()
    first = post("verify", org.admin_token, "/api/v1/verify", {"email": "a@example.com"})
    assert first.status == 200
    body = {"email": "b@example.com"}
    replay = [
        call("verify", "POST", "/api/v1/verify", token=org.admin_token, json_body=body, headers=headers)
        for _ in range(2)
    ]
    assert [r.status for r in replay] == [200, 200] and replay[0].json() == replay[1].json()
    assert credits(org)["remaining"] == 0  # the replay consumed nothing

    refused = post("verify", org.admin_token, "/api/v1/verify", {"email": "c@example.com"})
    assert (refused.status, refused.error_code) == (402, "insufficient_credits")
    assert refused.json()["error"]["retryable"] is False
    after = credits(org)
    assert (after["used"], after["remaining"], after["allowance"]) == (2, 0, 2)


def test_the_last_credit_goes_once(table: Table, org: NewOrganization) -> None:
    """Two verifications racing for the last credit: the conditional write lets one through."""
    org_id = org.organization["id"]
    store.consume(table, org_id, "2026-01", allowance=2, tally={"deliverable": 1}, expires_at=1)
    store.consume(table, org_id, "2026-01", allowance=2, tally={"risky": 1}, expires_at=1)
    with pytest.raises(ConditionFailed):
        store.consume(table, org_id, "2026-01", allowance=2, tally={"unknown": 1}, expires_at=1)
    item = store.credits(table, org_id, "2026-01")
    assert item is not None
    assert (item["used"], item["status_deliverable"], item["status_risky"]) == (2, 1, 1)
    assert "status_unknown" not in item


def test_probe_rate_limits(
    org: NewOrganization, other_org: NewOrganization, probing: SmtpTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILROOM_VERIFY_PROBE_ORG_PER_MINUTE", "1")
    monkeypatch.setenv("MAILROOM_VERIFY_PROBE_DOMAIN_PER_MINUTE", "1")
    get_settings.cache_clear()
    assert verify(org, "alice@example.com", smtp=True)["checks"]["smtp"] == "accepted"
    limited = post("verify", org.admin_token, "/api/v1/verify", {"email": "alice@example.com", "smtp": True})
    assert (limited.status, limited.error_code) == (429, "probe_rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert credits(org)["used"] == 1  # refused before any work: no credit taken
    # Without a probe the organization is not limited.
    assert verify(org, "alice@example.com")["status"] == "deliverable"

    # Another organization probing the same domain this minute: the probe is skipped, not the request.
    other = verify(other_org, "alice@example.com", smtp=True)
    assert (other["status"], reasons(other)) == ("unknown", ["smtp_rate_limited"])
    assert len(probing.policy.sessions) == 1


def test_scopes(org: NewOrganization, zone: AuthoritativeDns) -> None:
    reader = token(org, ["verify:read"])
    nothing = token(org, sorted(OPS_SCOPES - {"verify:read", "verify:write"}))
    assert get("verify", reader, "/api/v1/verify/credits").status == 200
    refused = post("verify", reader, "/api/v1/verify", {"email": "a@example.com"})
    assert (refused.status, refused.error_code) == (403, "insufficient_scope")
    assert get("verify", nothing, "/api/v1/verify/credits").status == 403
    for body in ({}, {"email": ""}, {"email": "a@example.com", "extra": 1}, {"email": "x" * 513}):
        assert post("verify", org.admin_token, "/api/v1/verify", body).status == 422
    assert credits(org)["used"] == 0

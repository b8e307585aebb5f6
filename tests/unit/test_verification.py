"""The verifier's pure rules: syntax, what an address's name says, and the verdict."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain.verification import (
    MailHost,
    Probe,
    Smtp,
    Status,
    check_syntax,
    is_disposable,
    is_free_provider,
    is_role,
    suggest_domain,
    verdict,
)

MX = MailHost(exists=True, mx=True, hosts=("mx.example.org",))


@pytest.mark.parametrize(
    ("address", "normalized", "ascii_domain"),
    [
        ("Jane.Doe@Example.ORG", "Jane.Doe@example.org", "example.org"),
        ("jörg@bücher.de", "jörg@bücher.de", "xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "user@bücher.de", "xn--bcher-kva.de"),
        ("用户@例子.广告", "用户@例子.广告", "xn--fsqu00a.xn--4rr70v"),
    ],
)
def test_valid_addresses_are_normalized(address: str, normalized: str, ascii_domain: str) -> None:
    syntax = check_syntax(address)
    assert (syntax.normalized, syntax.ascii_domain, syntax.error) == (normalized, ascii_domain, None)


@pytest.mark.parametrize(
    "address",
    ["", "plain", "a@", "@example.org", "a@@example.org", "a b@example.org", "a@example", "a@localhost",
     "a@exa mple.org", "a..b@example.org", "x" * 65 + "@example.org", "a@host.invalid"],
)  # fmt: skip
def test_invalid_addresses_say_why(address: str) -> None:
    syntax = check_syntax(address)
    assert not syntax.valid and syntax.error
    result = verdict(syntax, None)
    assert result.status is Status.UNDELIVERABLE and result.reasons[0].code == "invalid_syntax"
    assert result.checks["syntax"] is False and result.normalized is None


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("gmial.com", "gmail.com"),
        ("gmail.con", "gmail.com"),
        ("gmai.com", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("outlok.com", "outlook.com"),
        ("icloud.co", "icloud.com"),
        ("protonmial.com", "protonmail.com"),
    ],
)
def test_typo_suggestions(typed: str, meant: str) -> None:
    assert suggest_domain(typed) == meant


@pytest.mark.parametrize(
    "domain", ["gmail.com", "example.org", "gmx.de", "mail.ru", "me.com", "live.com", "acme.io"]
)
def test_no_suggestion_for_real_or_unrelated_domains(domain: str) -> None:
    assert suggest_domain(domain) is None


def test_name_checks() -> None:
    assert is_disposable("mailinator.com") and is_disposable("inbox.mailinator.com")
    assert not is_disposable("example.org") and not is_disposable("com")
    assert is_role("info") and is_role("Sales+eu") and is_role("no.reply") and is_role("mailer_daemon")
    assert not is_role("jane") and not is_role("information")
    assert is_free_provider("gmail.com") and is_free_provider("GMX.de") and not is_free_provider("acme.io")


def _status(email: str, host: MailHost, probe: Probe = Probe(Smtp.NOT_REQUESTED)) -> tuple[Status, list[str]]:
    result = verdict(check_syntax(email), host, probe)
    return result.status, [r.code for r in result.reasons]


def test_verdict_precedence() -> None:
    accepted = Probe(Smtp.ACCEPTED, catch_all=False, reply="250 2.1.5 Ok")
    assert _status("jane@example.org", MX, accepted) == (Status.DELIVERABLE, [])
    assert _status("jane@example.org", MailHost(exists=False, mx=False)) == (
        Status.UNDELIVERABLE,
        ["domain_not_found"],
    )
    assert _status("jane@example.org", MailHost(exists=True, mx=True, null_mx=True)) == (
        Status.UNDELIVERABLE,
        ["null_mx"],
    )
    rejected = Probe(Smtp.REJECTED, reply="550 5.1.1 no such user")
    # A rejected mailbox beats disposable and role: it is certain.
    assert _status("info@mailinator.com", MX, rejected) == (
        Status.UNDELIVERABLE,
        ["mailbox_rejected", "disposable", "role_account"],
    )
    dns_down = MailHost(exists=None, mx=None, hosts=None, error="timed out")
    assert _status("jane@example.org", dns_down) == (Status.UNKNOWN, ["dns_unavailable"])
    # Disposable is known from the name alone, so it beats an unavailable DNS.
    assert _status("jane@mailinator.com", dns_down)[0] is Status.RISKY
    greylisted = Probe(Smtp.UNKNOWN, reason="smtp_temporary_failure", detail="450")
    # Unknown beats the soft risks: the probe was asked for and did not answer.
    assert _status("info@example.org", MX, greylisted) == (
        Status.UNKNOWN,
        ["smtp_temporary_failure", "role_account"],
    )
    catch_all = Probe(Smtp.ACCEPTED, catch_all=True)
    assert _status("jane@example.org", MX, catch_all) == (Status.RISKY, ["catch_all"])
    implicit = MailHost(exists=True, mx=False, hosts=("example.org",))
    assert _status("jane@example.org", implicit) == (Status.DELIVERABLE, ["implicit_mx"])
    typo = verdict(check_syntax("jane@gmial.com"), MX)
    assert typo.suggestion == "jane@gmail.com" and typo.reasons[-1].code == "possible_typo"


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.text(max_size=80), st.booleans(), st.booleans())
def test_any_input_gets_a_verdict(text: str, exists: bool, has_mx: bool) -> None:
    """Whatever is typed, the verifier answers with one of the four statuses and never raises."""
    host = MailHost(exists=exists, mx=has_mx, hosts=("mx.example.org",) if exists else ())
    result = verdict(check_syntax(text), host)
    assert result.status in set(Status)
    assert (result.normalized is None) == (result.checks["syntax"] is False)
    if result.status is Status.DELIVERABLE:
        assert exists and result.checks["syntax"] is True

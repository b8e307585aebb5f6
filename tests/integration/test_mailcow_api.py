"""The mailcow-style admin surface (mailcow-style-management-api.txt) through the API functions'
handlers under moto: the page's example requests replayed with names in the paths, PUT as a full
update with the page's required fields, tenancy by name, ``tls_enforce_out`` in what SES is asked
to send, and a domain's ``active: false`` refusing new addresses, sends and inbound mail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.services import mailboxes as mailbox_service
from mailroom.services.mailbox_limits import domain_limits
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, domains, txn
from mailroom.store import mailboxes as mailbox_store
from mailroom.store.table import Table
from tests.support import inbound as sim
from tests.support.aws import template
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import (
    PASSWORD,
    add_domain,
    create_mail_infrastructure,
    key,
    new_mailbox,
    ok,
    public,
)
from tests.support.sending import message_token, send, sent_messages

SENDING_SET = "mailroom-test-SendingConfigurationSet"
TLS_SET = "mailroom-test-TlsRequiredConfigurationSet"

# The page's "Example Requests", byte for byte in their JSON.
PAGE_DOMAIN = {
    "domain": "example.com",
    "active": True,
    "aliases": 400,
    "backupmx": False,
    "defquota": 3072,
    "description": "Example domain",
    "mailboxes": 10,
    "maxquota": 10240,
    "quota": 10240,
}
PAGE_MAILBOX = {
    "active": True,
    "domain": "example.com",
    "local_part": "user",
    "name": "Example User",
    "password": "securepassword123",
    "quota": 3072,
    "force_pw_update": False,
    "tls_enforce_in": False,
    "tls_enforce_out": False,
}


def request(org: NewOrganization, function: str, method: str, path: str, body: Any = None) -> Result:
    return call(function, method, path, token=org.admin_token, json_body=body, headers=key())


def failing_fields(result: Result) -> set[str]:
    assert result.status == 422, (result.status, result.body[:1000])
    return {f["field"] for f in result.json()["error"]["fields"]}


@pytest.fixture
def mail(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The mail bucket, and SES's two configuration sets as the template defines them."""
    bucket, _queue = create_mail_infrastructure()
    resources = template()["Resources"]
    sesv2 = aws.client("sesv2")
    for name, logical_id in (
        (SENDING_SET, "SendingConfigurationSet"),
        (TLS_SET, "TlsRequiredConfigurationSet"),
    ):
        sesv2.create_configuration_set(ConfigurationSetName=name, **resources[logical_id]["Properties"])
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", SENDING_SET)
    monkeypatch.setenv("MAILROOM_SES_TLS_CONFIGURATION_SET", TLS_SET)
    get_settings.cache_clear()
    yield bucket
    get_settings.cache_clear()


# --- the page's examples, names in the paths --------------------------------------------------------


def test_the_pages_example_requests_replayed_with_names_in_paths(org: NewOrganization, mail: str) -> None:
    domain = ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN), 201)
    assert (domain["domain"], domain["mailboxes"], domain["description"]) == (
        "example.com",
        10,
        "Example domain",
    )
    mailbox = ok(request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX), 201)
    assert (mailbox["address"], mailbox["name"], mailbox["quota"]) == (
        "user@example.com",
        "Example User",
        3072,
    )

    # GET /api/v1/mailboxes/{email} and GET /api/v1/domains/{domain}, any case: the same resources.
    assert ok(request(org, "mailboxes", "GET", "/api/v1/mailboxes/user@example.com")) == mailbox
    assert ok(request(org, "mailboxes", "GET", "/api/v1/mailboxes/User@EXAMPLE.com"))["id"] == mailbox["id"]
    assert ok(request(org, "domains", "GET", "/api/v1/domains/Example.COM"))["id"] == domain["id"]
    listed = ok(request(org, "mailboxes", "GET", "/api/v1/mailboxes"))
    assert [m["address"] for m in listed] == ["user@example.com"]

    # PUT /api/v1/mailboxes/{email}: the page's update fields (the create-only ones may be repeated).
    update = {k: v for k, v in PAGE_MAILBOX.items() if k != "password"} | {"name": "Renamed", "quota": 2048}
    replaced = ok(request(org, "mailboxes", "PUT", "/api/v1/mailboxes/user@example.com", update))
    assert (replaced["id"], replaced["name"], replaced["quota"]) == (mailbox["id"], "Renamed", 2048)

    # PUT /api/v1/domains/{domain}: the page's body with new limits.
    domain_update = PAGE_DOMAIN | {
        "mailboxes": 20,
        "description": "Now larger",
        "maxquota": 8192,
        "quota": 10000,
    }
    replaced_domain = ok(request(org, "domains", "PUT", "/api/v1/domains/example.com", domain_update))
    assert (replaced_domain["mailboxes"], replaced_domain["quota"], replaced_domain["description"]) == (
        20,
        10000,
        "Now larger",
    )

    # PUT /api/v1/aliases/{id}.
    alias = ok(
        request(
            org,
            "aliases",
            "POST",
            "/api/v1/aliases",
            {"address": "info@example.com", "goto": ["user@example.com"]},
        ),
        201,
    )
    replaced_alias = ok(
        request(
            org,
            "aliases",
            "PUT",
            f"/api/v1/aliases/{alias['id']}",
            {"goto": ["a@example.net"], "active": False},
        )
    )
    assert (replaced_alias["goto"], replaced_alias["active"]) == (["a@example.net"], False)

    # DELETE /api/v1/domains/{domain}: refused while it has addresses, done by name once empty.
    refused = request(org, "domains", "DELETE", "/api/v1/domains/example.com")
    assert (refused.status, refused.error_code) == (409, "domain_not_empty")
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN | {"domain": "example.org"}), 201)
    assert request(org, "domains", "DELETE", "/api/v1/domains/example.org").status == 204
    assert request(org, "domains", "GET", "/api/v1/domains/example.org").status == 404


def test_a_name_costs_one_extra_get_item_and_never_a_scan_or_query(
    org: NewOrganization, mail: str, table: Table
) -> None:
    add_domain(org, "example.com")
    mailbox = new_mailbox(org, "user")
    org_id = str(org.organization["id"])
    calls: list[str] = []
    client = aws.dynamodb()
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    try:
        assert mailbox_service.load(table, org_id, mailbox["id"])["id"] == mailbox["id"]
        by_id = list(calls)
        calls.clear()
        assert mailbox_service.load(table, org_id, "USER@example.com")["id"] == mailbox["id"]
        by_address = list(calls)
        calls.clear()
        from mailroom.services import domains as domain_service

        assert domain_service.load_domain(table, org_id, "example.com")["domain"] == "example.com"
        by_name = list(calls)
    finally:
        client.meta.events.unregister("before-call.dynamodb.*")
    assert by_id == ["GetItem"]
    assert by_address == ["GetItem", "GetItem"]
    assert by_name == ["GetItem", "GetItem"]


# --- PUT: full updates, required fields ---------------------------------------------------------------


def test_put_requires_the_pages_required_fields_and_names_each_missing_one(
    org: NewOrganization, mail: str
) -> None:
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN), 201)
    ok(request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX), 201)
    alias = ok(
        request(
            org,
            "aliases",
            "POST",
            "/api/v1/aliases",
            {"address": "info@example.com", "goto": ["user@example.com"]},
        ),
        201,
    )
    assert failing_fields(request(org, "domains", "PUT", "/api/v1/domains/example.com", {})) == {
        "domain",
        "active",
        "aliases",
        "defquota",
        "mailboxes",
        "maxquota",
        "quota",
    }
    assert failing_fields(request(org, "mailboxes", "PUT", "/api/v1/mailboxes/user@example.com", {})) == {
        "active",
        "name",
        "quota",
    }
    assert failing_fields(request(org, "aliases", "PUT", f"/api/v1/aliases/{alias['id']}", {})) == {
        "goto",
        "active",
    }
    # A full update cannot rename or move anything, and the password has its own endpoint.
    other_name = request(
        org, "domains", "PUT", "/api/v1/domains/example.com", PAGE_DOMAIN | {"domain": "example.org"}
    )
    assert failing_fields(other_name) == {"domain"}
    moved = request(
        org,
        "mailboxes",
        "PUT",
        "/api/v1/mailboxes/user@example.com",
        {"active": True, "name": "U", "quota": 100, "local_part": "other", "domain": "example.org"},
    )
    assert failing_fields(moved) == {"local_part", "domain"}
    with_password = request(
        org,
        "mailboxes",
        "PUT",
        "/api/v1/mailboxes/user@example.com",
        {"active": True, "name": "U", "quota": 100, "password": PASSWORD},
    )
    assert failing_fields(with_password) == {"password"}
    renamed_alias = request(
        org,
        "aliases",
        "PUT",
        f"/api/v1/aliases/{alias['id']}",
        {"goto": ["x@example.net"], "active": True, "address": "b@example.com"},
    )
    assert failing_fields(renamed_alias) == {"address"}
    # Limits below usage and inconsistent quotas are refused as with PATCH.
    below = request(org, "domains", "PUT", "/api/v1/domains/example.com", PAGE_DOMAIN | {"mailboxes": 0})
    assert failing_fields(below) == {"mailboxes"}


def test_put_resets_optional_fields_left_out_to_their_defaults(org: NewOrganization, mail: str) -> None:
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN | {"feedback_enabled": False}), 201)
    flags = {
        "force_pw_update": True,
        "tls_enforce_in": True,
        "tls_enforce_out": True,
        "storage_allocation_mb": 3072,
    }
    created = ok(
        request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX | flags | {"note": "kept"}), 201
    )
    assert (created["tls_enforce_out"], created["storage_mode"]) == (True, "dedicated")
    replaced = ok(
        request(
            org,
            "mailboxes",
            "PUT",
            "/api/v1/mailboxes/user@example.com",
            {"active": False, "name": None, "quota": 1024},
        )
    )
    assert {k: replaced[k] for k in ("active", "name", "quota", *flags)} == {
        "active": False,
        "name": None,
        "quota": 1024,
        "force_pw_update": False,
        "tls_enforce_in": False,
        "tls_enforce_out": False,
        "storage_allocation_mb": None,
    }
    assert (replaced["storage_mode"], replaced["note"]) == ("shared", "kept")  # the note has its own endpoint
    required = {
        k: PAGE_DOMAIN[k]
        for k in ("domain", "active", "aliases", "defquota", "mailboxes", "maxquota", "quota")
    }
    domain = ok(request(org, "domains", "PUT", "/api/v1/domains/example.com", required))
    assert (domain["description"], domain["feedback_enabled"]) == (None, True)


# --- tenancy by name ------------------------------------------------------------------------------------


def test_another_organizations_names_are_not_found(
    org: NewOrganization, other_org: NewOrganization, mail: str
) -> None:
    ok(request(other_org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN | {"domain": "globex.com"}), 201)
    ok(
        request(other_org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX | {"domain": "globex.com"}),
        201,
    )
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN), 201)
    ok(
        request(
            org,
            "aliases",
            "POST",
            "/api/v1/aliases",
            {"address": "alias@example.com", "goto": ["x@example.net"]},
        ),
        201,
    )
    attempts = [
        ("domains", "GET", "/api/v1/domains/globex.com", None),
        ("domains", "PUT", "/api/v1/domains/globex.com", PAGE_DOMAIN | {"domain": "globex.com"}),
        ("domains", "PATCH", "/api/v1/domains/globex.com", {"active": False}),
        ("domains", "DELETE", "/api/v1/domains/globex.com", None),
        ("mailboxes", "GET", "/api/v1/mailboxes/user@globex.com", None),
        ("mailboxes", "PUT", "/api/v1/mailboxes/user@globex.com", {"active": False, "name": "x", "quota": 1}),
        ("mailboxes", "POST", "/api/v1/mailboxes/user@globex.com:delete-intent", None),
        # Names this organization has, but not of that kind, and names nobody has.
        ("mailboxes", "GET", "/api/v1/mailboxes/alias@example.com", None),
        ("mailboxes", "GET", "/api/v1/mailboxes/nobody@example.com", None),
        ("mailboxes", "GET", "/api/v1/mailboxes/not an address@", None),
        ("domains", "GET", "/api/v1/domains/unknown.example.net", None),
        ("domains", "GET", "/api/v1/domains/no_such..name", None),
    ]
    for function, method, path, body in attempts:
        result = request(org, function, method, path, body)
        assert (result.status, result.error_code) == (404, "not_found"), (method, path, result.body[:300])
    # Untouched: the other organization's resources are as they were.
    assert ok(request(other_org, "domains", "GET", "/api/v1/domains/globex.com"))["active"] is True
    assert ok(request(other_org, "mailboxes", "GET", "/api/v1/mailboxes/user@globex.com"))["active"] is True


# --- tls_enforce_out ------------------------------------------------------------------------------------


def test_tls_enforce_out_sends_through_the_configuration_set_that_requires_tls(
    org: NewOrganization, mail: str
) -> None:
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN), 201)
    strict = ok(
        request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX | {"tls_enforce_out": True}), 201
    )
    plain = ok(
        request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX | {"local_part": "plain"}), 201
    )
    message = {"to": ["someone@example.net"], "subject": "Hi", "text": "Hello"}
    ok(send(message_token(org, strict["id"]), message), 201)
    ok(send(message_token(org, plain["id"]), message), 201)
    strict_sent, plain_sent = sent_messages()[-2:]
    assert (strict_sent.configuration_set_name, plain_sent.configuration_set_name) == (TLS_SET, SENDING_SET)
    # What that set does, as SES holds it: deliver over TLS only.
    tls_set = aws.client("sesv2").get_configuration_set(
        ConfigurationSetName=strict_sent.configuration_set_name
    )
    assert tls_set["DeliveryOptions"]["TlsPolicy"] == "REQUIRE"
    assert "TlsPolicy" not in aws.client("sesv2").get_configuration_set(ConfigurationSetName=SENDING_SET).get(
        "DeliveryOptions", {}
    )
    # Turned off with a full update: the ordinary set again.
    put_body = {"active": True, "name": "Example User", "quota": 3072, "tls_enforce_out": False}
    ok(request(org, "mailboxes", "PUT", "/api/v1/mailboxes/user@example.com", put_body))
    ok(send(message_token(org, strict["id"]), message), 201)
    assert sent_messages()[-1].configuration_set_name == SENDING_SET


def test_tls_enforce_out_without_a_tls_configuration_set_sends_nothing(
    org: NewOrganization, mail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN), 201)
    strict = ok(
        request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX | {"tls_enforce_out": True}), 201
    )
    token = message_token(org, strict["id"])
    monkeypatch.delenv("MAILROOM_SES_TLS_CONFIGURATION_SET")
    get_settings.cache_clear()
    before = len(sent_messages())
    refused = send(token, {"to": ["someone@example.net"], "subject": "Hi", "text": "Hello"})
    assert (refused.status, refused.error_code) == (503, "tls_required_unavailable")
    assert len(sent_messages()) == before


def test_the_template_defines_the_tls_configuration_set_and_lets_every_sender_use_it() -> None:
    resources = template()["Resources"]
    tls_set = resources["TlsRequiredConfigurationSet"]
    assert tls_set["Type"] == "AWS::SES::ConfigurationSet"
    assert tls_set["Properties"]["DeliveryOptions"] == {"TlsPolicy": "REQUIRE"}
    destination = resources["TlsRequiredEventDestination"]["Properties"]
    assert destination["ConfigurationSetName"] == {"Ref": "TlsRequiredConfigurationSet"}
    assert (
        destination["EventDestination"]
        == resources["SendingEventDestination"]["Properties"]["EventDestination"]
    )
    env = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MAILROOM_SES_TLS_CONFIGURATION_SET"] == {"Ref": "TlsRequiredConfigurationSet"}
    senders = 0
    for name, resource in resources.items():
        if name == "TicketsFunction":
            # Ticket mail goes from the platform domain to the operator, never from a mailbox: it
            # has no tls_enforce_out to honour, so it is not granted the TLS-requiring set.
            continue
        for policy in (resource.get("Properties") or {}).get("Policies") or []:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                targets = str(statement.get("Resource"))
                if "${SendingConfigurationSet}" in targets:
                    senders += 1
                    assert "${TlsRequiredConfigurationSet}" in targets
    assert senders >= 1
    rule = resources["DeliveryEventsFunction"]["Properties"]["Events"]
    patterns = [e["Properties"]["Pattern"] for e in rule.values() if e["Type"] == "EventBridgeRule"]
    assert any(
        p["detail"]["mail"]["tags"]["ses:configuration-set"]
        == [{"Ref": "SendingConfigurationSet"}, {"Ref": "TlsRequiredConfigurationSet"}]
        for p in patterns
    )


# --- active: false --------------------------------------------------------------------------------------


def test_an_inactive_domain_gets_no_new_addresses_sends_nothing_and_receives_nothing(
    org: NewOrganization, mail: str, table: Table
) -> None:
    ok(request(org, "domains", "POST", "/api/v1/domains", PAGE_DOMAIN), 201)
    user = ok(request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX), 201)
    token = message_token(org, user["id"])
    invite = ok(
        request(
            org,
            "mailboxes",
            "POST",
            "/api/v1/mailboxes/invites",
            {"local_part": "later", "domain": "example.com"},
        ),
        201,
    )
    ok(request(org, "domains", "PUT", "/api/v1/domains/example.com", PAGE_DOMAIN | {"active": False}))

    # Creating addresses: a mailbox, a batch, an alias, an invite.
    refusals = [
        ("mailboxes", "/api/v1/mailboxes", PAGE_MAILBOX | {"local_part": "new"}, "domain"),
        ("aliases", "/api/v1/aliases", {"address": "new@example.com", "goto": ["x@example.net"]}, "address"),
        ("mailboxes", "/api/v1/mailboxes/invites", {"local_part": "new", "domain": "example.com"}, "domain"),
    ]
    for function, path, body, field in refusals:
        refused = request(org, function, "POST", path, body)
        assert (refused.status, refused.error_code) == (422, "domain_inactive"), (path, refused.body[:300])
        assert [f["field"] for f in refused.json()["error"]["fields"]] == [field]
    batch = request(
        org,
        "mailboxes",
        "POST",
        "/api/v1/mailboxes:bulk",
        {"mailboxes": [PAGE_MAILBOX | {"local_part": "new"}]},
    )
    assert batch.status == 422 and "domain_inactive" in batch.body.decode()
    # An invite issued before is not redeemed into a mailbox either.
    redeemed = public(
        "mailbox_auth", "/api/v1/auth/invites:redeem", {"code": invite["code"], "password": PASSWORD}
    )
    assert (redeemed.status, redeemed.error_code) == (422, "domain_inactive")

    # Sending from it.
    before = len(sent_messages())
    refused = send(token, {"to": ["someone@example.net"], "subject": "Hi", "text": "Hello"})
    assert (refused.status, refused.error_code) == (403, "domain_inactive")
    assert len(sent_messages()) == before

    # Receiving: the existing inbound rule drops (never bounces: no backscatter) and counts.
    _, report = sim.receive(mail, sim.message(to="user@example.com"), ["user@example.com"])
    assert (report["stored"], report["dropped"]) == (0, {"domain_inactive": 1})

    # Active again: all three work.
    ok(request(org, "domains", "PATCH", "/api/v1/domains/example.com", {"active": True}))
    ok(request(org, "mailboxes", "POST", "/api/v1/mailboxes", PAGE_MAILBOX | {"local_part": "new"}), 201)
    ok(send(token, {"to": ["someone@example.net"], "subject": "Hi", "text": "Hello"}), 201)
    _, report = sim.receive(
        mail, sim.message(to="user@example.com", message_id="<m2@x>"), ["user@example.com"]
    )
    assert report["stored"] == 1


def test_deactivation_cannot_slip_between_the_check_and_the_write(
    org: NewOrganization, mail: str, table: Table
) -> None:
    """The active flag is a condition of the write that counts a new address on the domain."""
    created = add_domain(org, "example.com")
    org_id = str(org.organization["id"])
    seen_active = domains.get(table, org_id, created["id"])
    assert seen_active is not None
    ok(request(org, "domains", "PATCH", "/api/v1/domains/example.com", {"active": False}))
    for change in ({"mailboxes": 1}, {"aliases": 1}, {"invites": 1}):
        with pytest.raises(txn.Rejected):
            txn.run(table, [mailbox_store.domain_change(seen_active, domain_limits(seen_active), **change)])

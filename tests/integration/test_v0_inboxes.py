"""/api/v0/inboxes through the authorizer and the inboxes function, under moto: inboxes are
mailboxes (v1 sees them), the shared platform domain (addresses unique across organizations,
inbound mail routed by address), custom domains, pagination, validation, deletion and tenancy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, keys, organizations
from mailroom.store import domains as domain_store
from mailroom.store import mail as mail_store
from mailroom.store import platform_domain as platform_store
from mailroom.store.table import Item, Table
from mailroom.store.txn import Update
from tests.support import inbound as sim
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure
from tests.support.v0 import TIMESTAMP, v0_error

INBOXES = "/api/v0/inboxes"
PLATFORM = "mailroom.localhost"
FIELDS = {
    "inbox_id",
    "email_address",
    "username",
    "domain",
    "display_name",
    "client_id",
    "created_at",
    "updated_at",
}


@pytest.fixture
def infra(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    bucket, queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_PURGE_QUEUE_URL", queue)
    get_settings.cache_clear()
    yield bucket, queue
    get_settings.cache_clear()


def create(token: str, **body: Any) -> Result:
    return call("agent_inboxes", "POST", INBOXES, token=token, json_body=body)


def created(token: str, **body: Any) -> dict[str, Any]:
    result = create(token, **body)
    assert result.status == 200, (result.status, result.body)
    return result.json()  # type: ignore[no-any-return]


def get(token: str, inbox_id: str) -> Result:
    return call("agent_inboxes", "GET", f"{INBOXES}/{inbox_id}", token=token)


def delete(token: str, inbox_id: str) -> Result:
    return call("agent_inboxes", "DELETE", f"{INBOXES}/{inbox_id}", token=token)


def inbox_messages(table: Table, org: NewOrganization, inbox_id: str) -> list[Item]:
    return mail_store.list_messages(
        table, org.organization["id"], inbox_id, per_page=100, cursor=None, folder_key=None
    ).items


# --- create --------------------------------------------------------------------------------------------


def test_an_inbox_on_the_platform_domain_is_a_mailbox(org: NewOrganization, table: Table, infra: Any) -> None:
    inbox = created(org.admin_token, username="agent-1", display_name="Agent One", client_id="my-agent")
    assert set(inbox) == FIELDS
    assert inbox["inbox_id"].startswith("mbx_")
    assert inbox["email_address"] == "agent-1@mailroom.localhost"
    assert (inbox["username"], inbox["domain"]) == ("agent-1", PLATFORM)
    assert (inbox["display_name"], inbox["client_id"]) == ("Agent One", "my-agent")
    assert TIMESTAMP.match(inbox["created_at"]) and inbox["created_at"] == inbox["updated_at"]

    # The same item through v1, on the organization's item of the shared platform domain.
    mailbox = call("mailboxes", "GET", f"/api/v1/mailboxes/{inbox['inbox_id']}", token=org.admin_token)
    v1 = mailbox.json()["data"]
    assert (v1["address"], v1["name"], v1["domain"]) == ("agent-1@mailroom.localhost", "Agent One", PLATFORM)
    assert v1["domain_id"] == keys.platform_domain_id(PLATFORM)
    assert v1["password_updated_at"] is None  # no password: agents use the API key

    # Counted as a mailbox of the organization; the platform domain is not one of its domains.
    org_item = organizations.get(table, org.organization["id"]) or {}
    assert (org_item["mailbox_count"], org_item["domain_count"]) == (1, 0)
    v1_domains = call("domains", "GET", "/api/v1/domains", token=org.admin_token).json()
    assert v1_domains["data"] == [] and v1_domains["meta"]["total"] == 0
    hidden = call("domains", "GET", f"/api/v1/domains/{v1['domain_id']}", token=org.admin_token)
    assert hidden.status == 404
    claim = platform_store.address_owner(table, "agent-1@mailroom.localhost")
    assert claim is not None and claim["org_id"] == org.organization["id"]


def test_a_named_domain_of_the_organization_and_the_platform_domain_by_name(
    org: NewOrganization, infra: Any
) -> None:
    add_domain(org, "example.com")
    custom = created(org.admin_token, username="Sales.Team", domain="Example.COM")
    assert (custom["email_address"], custom["username"], custom["domain"]) == (
        "sales.team@example.com",
        "sales.team",
        "example.com",
    )
    assert (custom["display_name"], custom["client_id"]) == (None, None)
    named = created(org.admin_token, username="bot", domain=PLATFORM)
    assert named["email_address"] == "bot@mailroom.localhost"
    unknown = v0_error(
        create(org.admin_token, username="x", domain="nowhere.example.org"), 422, "ValidationError"
    )
    assert unknown["errors"][0]["field"] == "domain"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "with space"}, "username"),
        ({"username": "semi;colon"}, "username"),
        ({"username": ".leading"}, "username"),
        ({"username": "x" * 65}, "username"),
        ({}, "username"),
        ({"username": "ok", "password": "not-a-v0-field"}, "password"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    org: NewOrganization, body: dict[str, Any], field: str
) -> None:
    result = call("agent_inboxes", "POST", INBOXES, token=org.admin_token, json_body=body)
    error = v0_error(result, 422, "ValidationError")
    assert error["errors"][0]["field"] == field


def test_platform_addresses_are_unique_across_organizations(
    org: NewOrganization, other_org: NewOrganization, infra: Any
) -> None:
    first = created(org.admin_token, username="agent-1")
    v0_error(create(org.admin_token, username="Agent-1"), 409, "ConflictError")
    taken = v0_error(create(other_org.admin_token, username="agent-1"), 409, "ConflictError")
    assert "platform domain" in taken["message"]
    assert created(other_org.admin_token, username="agent-2")["email_address"] == "agent-2@mailroom.localhost"
    # Once deleted, the address is free for anyone at once.
    assert delete(org.admin_token, first["inbox_id"]).status == 204
    assert created(other_org.admin_token, username="agent-1")["email_address"] == "agent-1@mailroom.localhost"


def test_the_organizations_inbox_limit_holds(org: NewOrganization, table: Table, infra: Any) -> None:
    Update(keys.org_pk(org.organization["id"]), keys.ORG_SK).set(**{"limits.mailboxes": 1}).apply(table)
    created(org.admin_token, username="one")
    assert "limit" in v0_error(create(org.admin_token, username="two"), 422, "ValidationError")["message"]


def test_a_platform_domain_hosted_by_a_tenant_is_unavailable(
    org: NewOrganization, infra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_domain(org, "example.com")
    monkeypatch.setenv("MAILROOM_PLATFORM_DOMAIN", "example.com")
    get_settings.cache_clear()
    v0_error(create(org.admin_token, username="agent"), 503, "ServiceUnavailableError")


# --- read, list, update -------------------------------------------------------------------------------


def test_list_pages_by_number_with_the_maintained_total(org: NewOrganization, infra: Any) -> None:
    made = [created(org.admin_token, username=f"agent-{i}")["inbox_id"] for i in range(5)]

    def page(**query: Any) -> dict[str, Any]:
        result = call("agent_inboxes", "GET", INBOXES, token=org.admin_token, query=query)
        assert result.status == 200, result.body
        return result.json()  # type: ignore[no-any-return]

    everything = page()
    assert (everything["total"], everything["page"], everything["page_size"]) == (5, 1, 20)
    assert [i["inbox_id"] for i in everything["data"]] == made
    assert all(set(i) == FIELDS for i in everything["data"])
    second = page(page=2, page_size=2)
    assert [i["inbox_id"] for i in second["data"]] == made[2:4]
    assert (second["total"], second["page"], second["page_size"]) == (5, 2, 2)
    assert [i["inbox_id"] for i in page(page=3, page_size=2)["data"]] == made[4:]
    assert page(page=9, page_size=100)["data"] == []
    for bad in ({"page_size": 101}, {"page_size": 0}, {"page": 0}, {"page": -1}):
        error = v0_error(
            call("agent_inboxes", "GET", INBOXES, token=org.admin_token, query=bad), 422, "ValidationError"
        )
        assert error["errors"][0]["field"].startswith("query.")


def test_get_and_update_the_display_name(org: NewOrganization, infra: Any) -> None:
    inbox = created(org.admin_token, username="agent-1", display_name="Agent One", client_id="c-1")
    assert get(org.admin_token, inbox["inbox_id"]).json() == inbox
    path = f"{INBOXES}/{inbox['inbox_id']}"
    renamed = call(
        "agent_inboxes", "PATCH", path, token=org.admin_token, json_body={"display_name": "Updated"}
    )
    assert renamed.status == 200, renamed.body
    body = renamed.json()
    assert body["display_name"] == "Updated" and body["client_id"] == "c-1"
    assert body["updated_at"] >= inbox["updated_at"] and body["created_at"] == inbox["created_at"]
    assert {k: v for k, v in body.items() if k not in ("display_name", "updated_at")} == {
        k: v for k, v in inbox.items() if k not in ("display_name", "updated_at")
    }
    assert get(org.admin_token, inbox["inbox_id"]).json() == body
    unchanged = call("agent_inboxes", "PATCH", path, token=org.admin_token, json_body={})
    assert unchanged.json() == body
    cleared = call("agent_inboxes", "PATCH", path, token=org.admin_token, json_body={"display_name": None})
    assert cleared.json()["display_name"] is None
    wrong = call("agent_inboxes", "PATCH", path, token=org.admin_token, json_body={"username": "new"})
    v0_error(wrong, 422, "ValidationError")


def test_inboxes_of_another_organization_do_not_exist(
    org: NewOrganization, other_org: NewOrganization, infra: Any
) -> None:
    inbox = created(org.admin_token, username="private")
    for result in (
        get(other_org.admin_token, inbox["inbox_id"]),
        call(
            "agent_inboxes",
            "PATCH",
            f"{INBOXES}/{inbox['inbox_id']}",
            token=other_org.admin_token,
            json_body={"display_name": "x"},
        ),
        delete(other_org.admin_token, inbox["inbox_id"]),
        get(org.admin_token, "mbx_01NOSUCHINBOX0000000000000"),
        get(org.admin_token, "x" * 300),
    ):
        assert v0_error(result, 404, "NotFoundError")["message"] == "Inbox not found"
    assert call("agent_inboxes", "GET", INBOXES, token=other_org.admin_token).json()["total"] == 0
    assert get(org.admin_token, inbox["inbox_id"]).status == 200


# --- delete ---------------------------------------------------------------------------------------------


def test_delete_removes_the_inbox_frees_it_and_queues_the_purge(
    org: NewOrganization, table: Table, infra: tuple[str, str]
) -> None:
    _bucket, queue = infra
    inbox = created(org.admin_token, username="doomed")
    other = created(org.admin_token, username="kept")
    deleted = delete(org.admin_token, inbox["inbox_id"])
    assert deleted.status == 204 and deleted.body == b""
    v0_error(get(org.admin_token, inbox["inbox_id"]), 404, "NotFoundError")
    v0_error(delete(org.admin_token, inbox["inbox_id"]), 404, "NotFoundError")
    assert (
        call("mailboxes", "GET", f"/api/v1/mailboxes/{inbox['inbox_id']}", token=org.admin_token).status
        == 404
    )
    listing = call("agent_inboxes", "GET", INBOXES, token=org.admin_token).json()
    assert [i["inbox_id"] for i in listing["data"]] == [other["inbox_id"]] and listing["total"] == 1
    assert platform_store.address_owner(table, "doomed@mailroom.localhost") is None
    platform_item = domain_store.get(table, org.organization["id"], keys.platform_domain_id(PLATFORM)) or {}
    assert platform_item["mailbox_count"] == 1
    messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["mailbox_id"] for m in messages] == [inbox["inbox_id"]]
    # No delete intent, no per-token cooldown: the next delete follows at once.
    assert delete(org.admin_token, other["inbox_id"]).status == 204


# --- mail -------------------------------------------------------------------------------------------------


def test_mail_to_a_platform_address_reaches_its_organizations_inbox(
    org: NewOrganization, other_org: NewOrganization, table: Table, infra: tuple[str, str]
) -> None:
    bucket, _queue = infra
    ours = created(org.admin_token, username="agent-1")
    theirs = created(other_org.admin_token, username="agent-2")
    recipients = ["Agent-1@mailroom.localhost", "agent-2@mailroom.localhost", "nobody@mailroom.localhost"]
    raw = sim.message("Hello agents", to=", ".join(recipients))
    _ses_id, report = sim.receive(bucket, raw, recipients)
    assert report["stored"] == 2
    assert report["dropped"].get("unknown_recipient") == 1
    (mine,) = inbox_messages(table, org, ours["inbox_id"])
    (yours,) = inbox_messages(table, other_org, theirs["inbox_id"])
    assert mine["subject"] == yours["subject"] == "Hello agents"
    assert mine["delivered_to"] == "agent-1@mailroom.localhost"


def test_a_v0_inbox_has_no_password_to_sign_in_with(org: NewOrganization, infra: Any) -> None:
    created(org.admin_token, username="agent-1")
    signin = call(
        "mailbox_auth",
        "POST",
        "/api/v1/auth/mailbox-token",
        json_body={"address": "agent-1@mailroom.localhost", "password": "Correct-Horse-42"},
        public=True,
    )
    assert signin.status == 401 and signin.error_code == "invalid_credentials"


def test_v1_cannot_put_mailboxes_or_aliases_on_the_platform_domain(org: NewOrganization, infra: Any) -> None:
    created(org.admin_token, username="agent-1")
    body = {"local_part": "x", "domain": PLATFORM, "password": "Correct-Horse-42"}
    refused = call(
        "mailboxes",
        "POST",
        "/api/v1/mailboxes",
        token=org.admin_token,
        json_body=body,
        headers={"Idempotency-Key": "m"},
    )
    assert refused.status == 422 and refused.error_code == "unknown_domain"


def test_the_inbox_routes_do_not_take_the_mail_subpaths() -> None:
    """The template routes /api/v0/inboxes/{inboxId} here and the mail subpaths elsewhere."""
    from tests.support.aws import template

    events = template()["Resources"]["AgentInboxesFunction"]["Properties"]["Events"]
    assert sorted(e["Properties"]["Path"] for e in events.values()) == [INBOXES, f"{INBOXES}/{{inboxId}}"]


def test_the_operator_registers_the_platform_domain_once(
    org: NewOrganization, table: Table, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailroom.cli import main

    assert main(["admin", "platform-domain", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["domain"] == PLATFORM and first["registered_now"] is True
    assert [(r["type"], r["name"]) for r in first["records"]][:3] == [
        ("MX", PLATFORM),
        ("MX", f"bounce.{PLATFORM}"),
        ("TXT", f"bounce.{PLATFORM}"),
    ]
    dkim = next(r for r in first["records"] if "._domainkey." in r["name"])
    assert aws.client("sesv2").get_email_identity(EmailIdentity=PLATFORM)["IdentityType"] == "DOMAIN"
    claim = domain_store.claim_of(table, PLATFORM) or {}
    assert claim["shared"] is True and dkim["value"].endswith(claim["dkim_public_key"])

    # Again: nothing to do, the same records.
    assert main(["admin", "platform-domain", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["registered_now"] is False and again["records"] == first["records"]
    # The identity went missing from SES: registered again, with a new key.
    aws.client("sesv2").delete_email_identity(EmailIdentity=PLATFORM)
    assert main(["admin", "platform-domain"]) == 0
    text = capsys.readouterr().out
    assert "registered with SES now" in text and "_domainkey" in text and dkim["value"] not in text
    # A name a tenant hosts cannot be the platform domain.
    add_domain(org, "example.com")
    assert main(["admin", "platform-domain", "--domain", "example.com"]) == 2
    assert "hosted by an organization" in capsys.readouterr().err

"""The automation resources (/api/v1/rules, /actions, /routes) through the automation function
under moto: validation, limits, in-use deletes, the webhook action's sealed secret, and the route
sets every change rebuilds for inbound (the contract's format, monotonic by HEAD version)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.domain import automation as model
from mailroom.services.organizations import NewOrganization
from mailroom.services.tokens import issue_ops_token
from mailroom.settings import get_settings
from mailroom.store import audit, keys, kms
from mailroom.store import automation as store
from mailroom.store.errors import StoreError
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.webhooks import WebhookAws, provision_webhook_aws

_keys = itertools.count()
FUNCTION = "automation"


@pytest.fixture
def env(moto_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookAws]:
    hooks = provision_webhook_aws(monkeypatch)
    name, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", name)
    monkeypatch.setenv("MAILROOM_EVENTBRIDGE_ACCOUNTS", "123456789012")
    get_settings.cache_clear()
    yield hooks
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under .example.test resolve to a public address, internal.example.net to a private one."""
    import mailroom.webhook_http as webhook_http

    async def resolver(host: str, port: int) -> list[str]:
        if host == "internal.example.net":
            return ["10.1.2.3"]
        if host.endswith("example.test"):
            return ["93.184.215.14"]
        raise OSError("no such host")

    monkeypatch.setattr(webhook_http, "system_resolver", resolver)


@pytest.fixture
def strict(env: WebhookAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """As deployed: webhook URLs must be https on public addresses."""
    monkeypatch.setenv("MAILROOM_WEBHOOK_ALLOW_PRIVATE", "0")
    get_settings.cache_clear()


@pytest.fixture
def mailbox(org: NewOrganization, env: WebhookAws) -> dict[str, Any]:
    add_domain(org, "example.com")
    return new_mailbox(org, "orders")


def send(token: str, method: str, path: str, body: Any = None) -> Result:
    headers = {"Idempotency-Key": f"auto-{next(_keys)}"} if method in ("POST", "PUT") else {}
    return call(FUNCTION, method, path, token=token, json_body=body, headers=headers)


def ok(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:2000])
    return result.json()["data"] if result.body else None


def error(result: Result, status: int, code: str) -> dict[str, Any]:
    assert result.status == status, (result.status, result.body[:2000])
    body = result.json()["error"]
    assert body["code"] == code, body
    return body  # type: ignore[no-any-return]


def make(token: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return ok(send(token, "POST", f"/api/v1/{kind}/", body), 201)  # type: ignore[no-any-return]


LABEL = {"name": "Tag orders", "action_type": "label", "parameters": {"labels": ["orders"]}}
RULE = {
    "name": "Orders",
    "match": "any",
    "conditions": [{"field": "subject", "op": "contains", "value": "order"}],
}


def route_set(table: Table, org: NewOrganization, kind: str, target_id: str) -> dict[str, Any] | None:
    return store.get_route_set(table, org.organization["id"], kind, target_id)


# ----------------------------------------------------------------------------- rules


def test_rules_crud_with_data_conditions_and_both_path_forms(org: NewOrganization, env: WebhookAws) -> None:
    token = org.admin_token
    body = {
        "name": "VIP orders",
        "match": "all",
        "conditions": [
            {"field": "subject", "op": "matches", "value": "*order*"},
            {"field": "data", "key": "mode", "op": "is", "value": "open"},
            {"field": "from", "op": "in_data", "key": "vips"},
        ],
    }
    rule = make(token, "rules", body)
    assert rule["id"].startswith("rul_") and rule["version"] == 1
    # The glob is stored in its canonical form, as mailbox rules are.
    assert rule["conditions"][0] == {
        "field": "subject",
        "op": "contains",
        "value": "order",
        "header": None,
        "key": None,
    }
    assert rule["conditions"][2]["key"] == "vips" and rule["conditions"][2]["value"] is None

    for path in (f"/api/v1/rules/{rule['id']}", f"/api/v1/rules/{rule['id']}/"):
        assert ok(send(token, "GET", path))["name"] == "VIP orders"
    listing = send(token, "GET", "/api/v1/rules/").json()
    assert [r["id"] for r in listing["data"]] == [rule["id"]] and listing["meta"]["total"] == 1

    patched = ok(send(token, "PATCH", f"/api/v1/rules/{rule['id']}/", {"match": "any"}))
    assert patched["match"] == "any" and patched["version"] == 2 and len(patched["conditions"]) == 3
    replaced = ok(send(token, "PUT", f"/api/v1/rules/{rule['id']}", {"name": "Everything"}))
    assert replaced["conditions"] == [] and replaced["match"] == "all" and replaced["version"] == 3

    assert send(token, "DELETE", f"/api/v1/rules/{rule['id']}/").status == 204
    error(send(token, "GET", f"/api/v1/rules/{rule['id']}"), 404, "not_found")
    assert send(token, "GET", "/api/v1/rules").json()["meta"]["total"] == 0


INVALID_CONDITIONS = [
    ({"field": "data", "op": "is", "value": "x"}, "invalid_condition", "conditions.0.key"),
    (
        {"field": "data", "key": "bad key!", "op": "is", "value": "x"},
        "invalid_condition",
        "conditions.0.key",
    ),
    ({"field": "from", "op": "in_data"}, "invalid_condition", "conditions.0.key"),
    ({"field": "size", "op": "in_data", "key": "k"}, "invalid_condition", "conditions.0.field"),
    (
        {"field": "from", "op": "in_data", "key": "k", "value": "x"},
        "invalid_condition",
        "conditions.0.value",
    ),
    ({"field": "subject", "op": "regex", "value": "(unclosed"}, "invalid_regex", "conditions.0.value"),
    (
        {"field": "subject", "op": "contains", "value": "x", "key": "k"},
        "invalid_condition",
        "conditions.0.key",
    ),
    ({"field": "spam", "op": "contains", "value": "x"}, "invalid_condition", "conditions.0.value"),
]


def test_rules_refuse_invalid_conditions_with_the_failing_field(
    org: NewOrganization, env: WebhookAws
) -> None:
    for condition, code, field in INVALID_CONDITIONS:
        body = {"name": "x", "conditions": [condition]}
        found = error(send(org.admin_token, "POST", "/api/v1/rules", body), 422, code)
        assert found["fields"][0]["field"] == field, (condition, found)
    assert send(org.admin_token, "GET", "/api/v1/rules").json()["meta"]["total"] == 0


def test_rule_limit_is_held_on_the_head_item(org: NewOrganization, env: WebhookAws, table: Table) -> None:
    org_id = org.organization["id"]
    table.update(
        keys.automation_pk(org_id),
        keys.AUTOMATION_HEAD_SK,
        "SET rule_count = :n",
        expression_values={":n": {"N": str(model.MAX_RULES - 1)}},
    )
    make(org.admin_token, "rules", RULE)
    error(send(org.admin_token, "POST", "/api/v1/rules", RULE), 422, "rule_limit_reached")
    assert store.head(table, org_id)["rule_count"] == model.MAX_RULES


# ----------------------------------------------------------------------------- actions


def test_webhook_action_secret_is_shown_once_and_sealed_to_the_action(
    org: NewOrganization, env: WebhookAws, table: Table
) -> None:
    body = {
        "name": "CRM",
        "action_type": "webhook",
        "parameters": {
            "url": "https://hooks.example.test/orders",
            "body_template": '{"subject": {{ message.subject | tojson }}, "n": {{ data.orders | length }}}',
            "data_keys": ["orders", "orders"],
        },
    }
    created = make(org.admin_token, "actions", body)
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["secret_last_four"] == secret[-4:]
    assert created["mode"] == "async" and created["parameters"]["data_keys"] == ["orders"]

    item = store.get(table, org.organization["id"], "action", created["id"])
    assert item is not None and secret not in repr(item)
    context = model.secret_context(org.organization["id"], created["id"])
    assert kms.decrypt(item["secret_ciphertext"], context).decode() == secret
    with pytest.raises(StoreError):  # KMS refuses the ciphertext under another action's context
        kms.decrypt(item["secret_ciphertext"], model.secret_context(org.organization["id"], "act_other"))

    for path in (f"/api/v1/actions/{created['id']}", "/api/v1/actions"):
        assert "whsec_" not in send(org.admin_token, "GET", path).body.decode()
    # An update keeps the secret and never shows it.
    updated = send(org.admin_token, "PATCH", f"/api/v1/actions/{created['id']}", {"name": "CRM v2"})
    assert ok(updated)["secret_last_four"] == secret[-4:] and "secret" not in updated.json()["data"]
    again = store.get(table, org.organization["id"], "action", created["id"])
    assert again is not None and kms.decrypt(again["secret_ciphertext"], context).decode() == secret


def test_parameters_answer_the_type_schema_and_the_values(org: NewOrganization, env: WebhookAws) -> None:
    body = {
        "name": "Extract",
        "action_type": "store_data",
        "parameters": {"key": "orders", "source": "subject", "pattern": r"Order (?P<number>\d+)"},
    }
    action = make(org.admin_token, "actions", body)
    for path in (f"/api/v1/actions/{action['id']}/parameters", f"/api/v1/actions/{action['id']}/parameters/"):
        view = ok(send(org.admin_token, "GET", path))
        assert view["action_type"] == "store_data"
        assert view["values"] == {**body["parameters"], "mode": "merge"}
        assert set(view["schema"]["required"]) == {"key", "source", "pattern"}
        assert view["schema"]["properties"]["mode"]["default"] == "merge"


INVALID_PARAMETERS = [
    ("label", {}, "invalid_parameters", "parameters.labels"),
    ("label", {"labels": ["has space"]}, "invalid_parameters", "parameters.labels.0"),
    ("move", {"folder": "a//b"}, "invalid_parameters", "parameters.folder"),
    ("forward", {"to": ["not an address"]}, "invalid_parameters", "parameters.to.0"),
    ("forward", {"to": []}, "invalid_parameters", "parameters.to"),
    ("reply", {"text": "{{ secret }}"}, "invalid_parameters", "parameters.text"),
    ("reply", {"text": "{% if %}"}, "invalid_parameters", "parameters.text"),
    (
        "store_data",
        {"key": "k", "source": "subject", "pattern": "(\\d+)"},
        "invalid_parameters",
        "parameters.pattern",
    ),
    (
        "store_data",
        {"key": "k", "source": "header", "pattern": "(?P<a>.)"},
        "invalid_parameters",
        "parameters",
    ),
    ("delete", {"unexpected": 1}, "invalid_parameters", "parameters.unexpected"),
    ("webhook", {"url": "ftp://hooks.example.test/x"}, "invalid_webhook_url", "parameters.url"),
    ("webhook", {"url": "https://internal.example.net/x"}, "webhook_url_not_allowed", "parameters.url"),
    (
        "webhook",
        {"url": "https://hooks.example.test/x", "body_template": "{{ nope }}"},
        "invalid_parameters",
        "parameters.body_template",
    ),
    (
        "eventbridge",
        {"event_bus_arn": "arn:aws:sqs:us-east-1:123456789012:q"},
        "invalid_event_bus_arn",
        "parameters.event_bus_arn",
    ),
    (
        "eventbridge",
        {"event_bus_arn": "arn:aws:events:us-east-1:999999999999:event-bus/theirs"},
        "event_bus_not_allowed",
        "parameters.event_bus_arn",
    ),
]


def test_actions_refuse_parameters_their_type_does_not_take(org: NewOrganization, strict: None) -> None:
    for action_type, parameters, code, field in INVALID_PARAMETERS:
        body = {"name": "x", "action_type": action_type, "parameters": parameters}
        found = error(send(org.admin_token, "POST", "/api/v1/actions", body), 422, code)
        assert field in [f["field"] for f in found["fields"]], (action_type, parameters, found)
    assert send(org.admin_token, "GET", "/api/v1/actions").json()["meta"]["total"] == 0


def test_an_action_keeps_its_type(org: NewOrganization, env: WebhookAws) -> None:
    action = make(org.admin_token, "actions", LABEL)
    replaced = {"name": "Move", "action_type": "move", "parameters": {"folder": "Archive"}}
    error(
        send(org.admin_token, "PUT", f"/api/v1/actions/{action['id']}", replaced),
        422,
        "action_type_immutable",
    )
    moved = ok(
        send(
            org.admin_token,
            "PUT",
            f"/api/v1/actions/{action['id']}/",
            {**LABEL, "parameters": {"labels": ["a", "b"]}},
        )
    )
    assert moved["parameters"] == {"labels": ["a", "b"]} and moved["version"] == 2


# ----------------------------------------------------------------------------- routes and route sets


def test_routes_build_the_route_sets_inbound_reads(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    token, org_id = org.admin_token, org.organization["id"]
    domain_id = ok(send_domains(token))[0]["id"]
    label = make(token, "actions", LABEL)
    hook = make(
        token,
        "actions",
        {"name": "Hook", "action_type": "webhook", "parameters": {"url": "https://hooks.example.test/a"}},
    )
    extract = make(
        token,
        "actions",
        {
            "name": "Extract",
            "action_type": "store_data",
            "parameters": {"key": "seen", "source": "from", "pattern": "(?P<who>.+)"},
        },
    )
    rule = make(
        token, "rules", {"name": "VIP", "conditions": [{"field": "from", "op": "in_data", "key": "vips"}]}
    )
    second = make(
        token,
        "routes",
        {
            "name": "Second",
            "target": {"mailbox_id": mailbox["id"]},
            "action_ids": [extract["id"]],
            "position": 5,
        },
    )
    first = make(
        token,
        "routes",
        {
            "name": "First",
            "target": {"mailbox_id": mailbox["id"]},
            "rule_id": rule["id"],
            "action_ids": [label["id"], hook["id"]],
            "position": 1,
            "stop": True,
        },
    )
    built_at = store.head(table, org_id)["version"]  # the mailbox's set was last rebuilt here
    whole_domain = make(
        token, "routes", {"name": "All", "target": {"domain_id": domain_id}, "action_ids": [label["id"]]}
    )
    assert whole_domain["position"] == 0 and second["position"] == 5
    by_mailbox = call(
        FUNCTION, "GET", "/api/v1/routes/", token=token, query={"mailbox_id": mailbox["id"]}
    ).json()
    assert [r["id"] for r in by_mailbox["data"]] == sorted([first["id"], second["id"]])
    assert by_mailbox["meta"]["total"] is None
    by_domain = call(FUNCTION, "GET", "/api/v1/routes", token=token, query={"domain_id": domain_id}).json()
    assert [r["id"] for r in by_domain["data"]] == [whole_domain["id"]]

    stored = route_set(table, org, "mailbox", mailbox["id"])
    assert stored is not None and stored["type"] == "route_set"
    assert stored["built_version"] == built_at < store.head(table, org_id)["version"]
    routes = json.loads(stored["routes"])
    assert [r["id"] for r in routes] == [first["id"], second["id"]]
    assert routes[0] == {
        "id": first["id"],
        "name": "First",
        "position": 1,
        "stop": True,
        "rule": {
            "id": rule["id"],
            "match": "all",
            "conditions": [{"field": "from", "op": "in_data", "key": "vips"}],
        },
        "actions": [
            {
                "id": label["id"],
                "name": "Tag orders",
                "action_type": "label",
                "parameters": {"labels": ["orders"]},
            },
            {
                "id": hook["id"],
                "name": "Hook",
                "action_type": "webhook",
                "parameters": {"url": "https://hooks.example.test/a", "data_keys": []},
            },
        ],
    }
    assert routes[1]["rule"] is None
    assert stored["data_keys"] == ["seen", "vips"]
    assert "whsec_" not in stored["routes"] and "secret" not in stored["routes"]
    domain_set = route_set(table, org, "domain", domain_id)
    assert domain_set is not None and [r["id"] for r in json.loads(domain_set["routes"])] == [
        whole_domain["id"]
    ]

    # Changing an action rebuilds the sets of the targets that run it, at the new HEAD version.
    before = stored["built_version"]
    ok(send(token, "PATCH", f"/api/v1/actions/{label['id']}", {"parameters": {"labels": ["vip"]}}))
    after = route_set(table, org, "mailbox", mailbox["id"])
    assert after is not None and after["built_version"] > before
    assert json.loads(after["routes"])[0]["actions"][0]["parameters"] == {"labels": ["vip"]}
    domain_after = route_set(table, org, "domain", domain_id)
    assert domain_after is not None and domain_after["built_version"] == after["built_version"]

    # A rule change too; a disabled route leaves the set; the last route gone, so is the set.
    ok(
        send(
            token,
            "PATCH",
            f"/api/v1/rules/{rule['id']}",
            {"match": "any", "conditions": [{"field": "subject", "op": "is", "value": "x"}]},
        )
    )
    rebuilt = route_set(table, org, "mailbox", mailbox["id"])
    assert rebuilt is not None and json.loads(rebuilt["routes"])[0]["rule"]["conditions"][0]["value"] == "x"
    assert rebuilt["data_keys"] == ["seen"]
    ok(send(token, "PATCH", f"/api/v1/routes/{first['id']}", {"enabled": False}))
    paused = route_set(table, org, "mailbox", mailbox["id"])
    assert paused is not None and [r["id"] for r in json.loads(paused["routes"])] == [second["id"]]
    assert send(token, "DELETE", f"/api/v1/routes/{second['id']}/").status == 204
    assert send(token, "DELETE", f"/api/v1/routes/{first['id']}").status == 204
    assert route_set(table, org, "mailbox", mailbox["id"]) is None
    assert route_set(table, org, "domain", domain_id) is not None


def send_domains(token: str) -> Result:
    return call("domains", "GET", "/api/v1/domains", token=token)


def test_a_route_moved_to_another_target_rebuilds_both(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    other = new_mailbox(org, "other")
    label = make(org.admin_token, "actions", LABEL)
    route = make(
        org.admin_token,
        "routes",
        {"name": "R", "target": {"mailbox_id": mailbox["id"]}, "action_ids": [label["id"]], "position": 3},
    )
    replaced = ok(
        send(
            org.admin_token,
            "PUT",
            f"/api/v1/routes/{route['id']}",
            {"name": "R", "target": {"mailbox_id": other["id"]}, "action_ids": [label["id"]]},
        )
    )
    assert replaced["target"] == {"mailbox_id": other["id"], "domain_id": None} and replaced["position"] == 0
    assert route_set(table, org, "mailbox", mailbox["id"]) is None
    moved = route_set(table, org, "mailbox", other["id"])
    assert moved is not None and json.loads(moved["routes"])[0]["id"] == route["id"]
    # A full replace on the same target keeps the route's place.
    kept = ok(
        send(
            org.admin_token,
            "PUT",
            f"/api/v1/routes/{route['id']}",
            {"name": "S", "target": {"mailbox_id": other["id"]}, "action_ids": [label["id"]], "stop": True},
        )
    )
    assert kept["position"] == 0 and kept["stop"] is True and kept["rule_id"] is None


def test_routes_refuse_what_is_not_the_organizations(
    org: NewOrganization, other_org: NewOrganization, mailbox: dict[str, Any]
) -> None:
    token = org.admin_token
    label = make(token, "actions", LABEL)
    foreign_action = make(other_org.admin_token, "actions", LABEL)
    foreign_rule = make(other_org.admin_token, "rules", RULE)
    add_domain(other_org, "globex.com")
    foreign_mailbox = new_mailbox(other_org, "theirs", "globex.com")
    target = {"mailbox_id": mailbox["id"]}
    cases = [
        ({"target": target, "action_ids": [foreign_action["id"]]}, "unknown_action", "action_ids"),
        (
            {"target": target, "action_ids": [label["id"]], "rule_id": foreign_rule["id"]},
            "unknown_rule",
            "rule_id",
        ),
        (
            {"target": {"mailbox_id": foreign_mailbox["id"]}, "action_ids": [label["id"]]},
            "unknown_target",
            "target",
        ),
        ({"target": {"domain_id": "dom_nope"}, "action_ids": [label["id"]]}, "unknown_target", "target"),
        ({"target": {}, "action_ids": [label["id"]]}, "validation_error", "target"),
        (
            {"target": {**target, "domain_id": "dom_x"}, "action_ids": [label["id"]]},
            "validation_error",
            "target",
        ),
        ({"target": target, "action_ids": [label["id"], label["id"]]}, "validation_error", "action_ids"),
    ]
    for body, code, field in cases:
        found = error(send(token, "POST", "/api/v1/routes", {"name": "R", **body}), 422, code)
        assert found["fields"][0]["field"] == field, (body, found)
    assert send(token, "GET", "/api/v1/routes").json()["meta"]["total"] == 0


def test_deleting_a_rule_or_action_a_route_uses_is_409_naming_the_route(
    org: NewOrganization, mailbox: dict[str, Any], table: Table
) -> None:
    token = org.admin_token
    label = make(token, "actions", LABEL)
    rule = make(token, "rules", RULE)
    route = make(
        token,
        "routes",
        {
            "name": "Orders route",
            "target": {"mailbox_id": mailbox["id"]},
            "rule_id": rule["id"],
            "action_ids": [label["id"]],
        },
    )
    for path in (f"/api/v1/rules/{rule['id']}", f"/api/v1/actions/{label['id']}/"):
        found = error(send(token, "DELETE", path), 409, "in_use")
        assert route["id"] in found["message"] and "Orders route" in found["message"]
    assert send(token, "DELETE", f"/api/v1/routes/{route['id']}").status == 204
    assert send(token, "DELETE", f"/api/v1/rules/{rule['id']}").status == 204
    # A task config (docs/automation-tasks.md: its item in the same partition) runs it too.
    org_id = org.organization["id"]
    task = {"type": "task", "id": "tsk_digest", "org_id": org_id, "name": "Digest", "action_id": label["id"]}
    table.put({"PK": keys.automation_pk(org_id), "SK": keys.automation_task_sk("tsk_digest"), **task})
    found = error(send(token, "DELETE", f"/api/v1/actions/{label['id']}"), 409, "in_use")
    assert "tsk_digest (Digest)" in found["message"]
    table.delete(keys.automation_pk(org_id), keys.automation_task_sk("tsk_digest"))
    assert send(token, "DELETE", f"/api/v1/actions/{label['id']}").status == 204


def test_per_target_route_limit(
    org: NewOrganization, mailbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "MAX_ROUTES_PER_TARGET", 2)
    label = make(org.admin_token, "actions", LABEL)
    body = {"name": "R", "target": {"mailbox_id": mailbox["id"]}, "action_ids": [label["id"]]}
    make(org.admin_token, "routes", body)
    make(org.admin_token, "routes", body)
    error(send(org.admin_token, "POST", "/api/v1/routes", body), 422, "target_route_limit_reached")


def test_a_concurrent_change_is_planned_again_on_the_new_state(
    org: NewOrganization, mailbox: dict[str, Any], table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that read the HEAD before another one committed does not write a route set built
    from stale routes: its commit fails and it runs again on what is current."""
    from mailroom.services import automation as automation_service
    from mailroom.services import automation_changes

    token = org.admin_token
    label = make(token, "actions", LABEL)
    base = {"target": {"mailbox_id": mailbox["id"]}, "action_ids": [label["id"]]}
    real = automation_changes.Snapshot.__init__
    raced: list[str] = []

    def racing(self: automation_changes.Snapshot, table_: Table, org_id: str) -> None:
        real(self, table_, org_id)
        if not raced:  # another request commits a route between this one's read and its write
            raced.append("")
            raced[0] = automation_service.create_route(table_, org_id, {"name": "Racer", **base})["id"]

    monkeypatch.setattr(automation_changes.Snapshot, "__init__", racing)
    mine = make(token, "routes", {"name": "Mine", **base})
    monkeypatch.undo()
    stored = route_set(table, org, "mailbox", mailbox["id"])
    assert stored is not None
    assert {r["id"] for r in json.loads(stored["routes"])} == {raced[0], mine["id"]}
    assert stored["built_version"] == store.head(table, org.organization["id"])["version"]


# ----------------------------------------------------------------------------- access


def test_scopes_isolation_and_audit(
    org: NewOrganization, other_org: NewOrganization, env: WebhookAws, table: Table
) -> None:
    org_id = org.organization["id"]
    reader = issue_ops_token(
        table, org_id=org_id, name="reader", scopes=["automation:read"], created_by=None
    ).plaintext
    action = make(org.admin_token, "actions", LABEL)
    assert ok(send(reader, "GET", f"/api/v1/actions/{action['id']}"))["id"] == action["id"]
    error(send(reader, "POST", "/api/v1/rules", RULE), 403, "insufficient_scope")
    error(send(reader, "DELETE", f"/api/v1/actions/{action['id']}"), 403, "insufficient_scope")
    # Another organization's id is not found, for reading and for writing.
    for method, path, body in (
        ("GET", f"/api/v1/actions/{action['id']}", None),
        ("GET", f"/api/v1/actions/{action['id']}/parameters", None),
        ("PATCH", f"/api/v1/actions/{action['id']}", {"name": "stolen"}),
        ("DELETE", f"/api/v1/actions/{action['id']}", None),
    ):
        error(send(other_org.admin_token, method, path, body), 404, "not_found")
    assert send(other_org.admin_token, "GET", "/api/v1/actions").json()["data"] == []

    records = audit.list_page(table, org_id, per_page=50, cursor=None).items
    created = [r for r in records if r["action"] == "automation.actions.create"]
    assert created and created[0]["target"]["id"] == action["id"]


def test_a_body_that_is_not_utf8_is_a_validation_error(org: NewOrganization, env: WebhookAws) -> None:
    """FastAPI answers 400 for a body it cannot decode; the API answers it like a body that is not
    JSON: 422 in the envelope, as documented."""
    from tests.support.lambda_api import LambdaContext, function_module, http_event

    event = http_event(
        "POST",
        "/api/v1/rules/",
        token=org.admin_token,
        headers={"content-type": "application/json", "idempotency-key": "undecodable"},
        body=b'{"name": "\xff\xfe"}',
    )
    response = function_module(FUNCTION).handler(event, LambdaContext(function_name=FUNCTION))
    assert response["statusCode"] == 422, response
    assert json.loads(response["body"])["error"]["code"] == "validation_error"

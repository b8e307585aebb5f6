"""The automation model's pure part (domain/automation.py): conditions, action parameters, route
sets; and the optional trailing slash (api/paths.py) with the template's routes for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.routing import RouteTable
from local.stack import Stack
from mailroom.api.paths import without_trailing_slash
from mailroom.domain import automation as model

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- conditions


def test_data_conditions_are_kept_with_their_key_and_canonical_op() -> None:
    rule = model.validate_rule(
        "  VIP  ",
        "any",
        [
            {"field": "data", "key": "mode", "op": "matches", "value": "*open*"},
            {"field": "header", "header": "X-Customer", "op": "not_in_data", "key": "blocked.v2"},
            {"field": "size", "op": "greater_than", "value": 10},
        ],
    )
    assert rule.name == "VIP" and rule.match == "any"
    assert rule.conditions == [
        {"field": "data", "key": "mode", "op": "contains", "value": "open"},
        {"field": "header", "op": "not_in_data", "key": "blocked.v2", "header": "X-Customer"},
        {"field": "size", "op": "greater_than", "value": 10},
    ]
    assert model.data_keys_of_conditions(rule.conditions) == ["mode", "blocked.v2"]


def test_no_condition_is_match_all() -> None:
    assert model.validate_rule("Every message", "any", []).match == "all"


@pytest.mark.parametrize(
    ("condition", "code", "field"),
    [
        ({"field": "data", "key": "k", "op": "is", "value": 3}, "invalid_condition", "conditions.0.value"),
        (
            {"field": "data", "key": "k", "op": "greater_than", "value": "3"},
            "invalid_condition",
            "conditions.0.op",
        ),
        (
            {"field": "data", "key": "k", "op": "is", "value": "x", "header": "X"},
            "invalid_condition",
            "conditions.0.header",
        ),
        ({"field": "header", "op": "in_data", "key": "k"}, "invalid_condition", "conditions.0.header"),
        ({"field": "from", "op": "in_data", "key": "x" * 129}, "invalid_condition", "conditions.0.key"),
        ({"field": "subject", "op": "contains"}, "invalid_condition", "conditions.0.value"),
        ({"field": "nope", "op": "is", "value": "x"}, "invalid_condition", "conditions.0.field"),
    ],
)
def test_invalid_conditions_name_their_field(condition: dict[str, Any], code: str, field: str) -> None:
    with pytest.raises(model.AutomationError) as raised:
        model.validate_rule("r", "all", [condition])
    assert raised.value.code == code and raised.value.fields[0][0] == field


def test_too_many_conditions() -> None:
    many = [{"field": "subject", "op": "contains", "value": str(i)} for i in range(51)]
    with pytest.raises(model.AutomationError) as raised:
        model.validate_rule("r", "all", many)
    assert raised.value.code == "too_many_conditions"


# ----------------------------------------------------------------------------- parameters


def test_every_action_type_has_a_parameter_schema() -> None:
    assert set(model.PARAMETER_MODELS) == set(model.ACTION_TYPES)
    assert set(model.ACTION_TYPES) == model.INLINE_ACTIONS | model.ASYNC_ACTIONS
    for action_type in model.ACTION_TYPES:
        schema = model.parameters_schema(action_type)
        assert schema["type"] == "object" and schema.get("additionalProperties") is False


def test_parameters_get_their_defaults_and_canonical_values() -> None:
    assert model.validate_parameters("eventbridge", {"event_bus_arn": "arn:x"}) == {
        "event_bus_arn": "arn:x",
        "detail_type": "Mailroom Automation",
    }
    assert model.validate_parameters("forward", {"to": ["Ops@Example.COM", "ops@example.com"]}) == {
        "to": ["ops@example.com"]
    }
    assert model.validate_parameters("reply", {"text": "Thanks"}) == {
        "subject": "Re: {{ message.subject }}",
        "text": "Thanks",
        "interval_days": 1,
    }
    assert model.validate_parameters("delete", {}) == {}


def test_store_data_needs_a_named_group_and_a_header_only_for_headers() -> None:
    ok = {
        "key": "orders",
        "source": "header",
        "header": "X-Order",
        "pattern": r"(?P<id>\d+)",
        "mode": "append",
    }
    assert model.validate_parameters("store_data", ok) == ok
    for bad, field in (
        ({**ok, "pattern": r"(\d+)"}, "parameters.pattern"),
        ({**ok, "pattern": "(?P<id>"}, "parameters.pattern"),
        ({**ok, "header": None}, "parameters"),
        ({**ok, "source": "subject"}, "parameters"),
        ({**ok, "mode": "replace"}, "parameters.mode"),
        ({**ok, "key": "no spaces"}, "parameters.key"),
    ):
        with pytest.raises(model.AutomationError) as raised:
            model.validate_parameters("store_data", bad)
        assert raised.value.code == "invalid_parameters"
        assert field in [f for f, _ in raised.value.fields], (bad, raised.value.fields)


def test_an_unknown_type_names_action_type() -> None:
    with pytest.raises(model.AutomationError) as raised:
        model.validate_parameters("teleport", {})
    assert raised.value.fields[0][0] == "action_type"


# ----------------------------------------------------------------------------- route sets


def _route(route_id: str, position: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": route_id,
        "name": f"route {route_id}",
        "target": {"mailbox_id": "mbx_1"},
        "rule_id": None,
        "action_ids": ["act_label"],
        "position": position,
        "stop": False,
        "enabled": True,
        **extra,
    }


ACTIONS = {
    "act_label": {
        "id": "act_label",
        "name": "Label",
        "action_type": "label",
        "parameters": {"labels": ["x"]},
    },
    "act_hook": {
        "id": "act_hook",
        "name": "Hook",
        "action_type": "webhook",
        "parameters": {"url": "https://example.test/h", "data_keys": ["extra"]},
        "secret_ciphertext": b"sealed",
        "secret_last_four": "abcd",
    },
    "act_store": {
        "id": "act_store",
        "name": "Store",
        "action_type": "store_data",
        "parameters": {"key": "seen", "source": "from", "pattern": "(?P<a>.+)", "mode": "merge"},
    },
}
RULES = {
    "rul_vip": {
        "id": "rul_vip",
        "name": "VIP",
        "match": "any",
        "conditions": [{"field": "from", "op": "in_data", "key": "vips"}],
    }
}


def test_a_route_set_holds_enabled_routes_in_order_without_secrets() -> None:
    built = model.route_set(
        [
            _route("rte_b", 2, action_ids=["act_hook", "act_store"]),
            _route("rte_a", 2, rule_id="rul_vip", stop=True),
            _route("rte_c", 1, enabled=False),
            _route("rte_d", 0),
        ],
        RULES,
        ACTIONS,
    )
    assert built is not None and built.count == 3
    routes = json.loads(built.routes)
    assert [r["id"] for r in routes] == ["rte_d", "rte_a", "rte_b"]
    assert routes[1]["rule"] == {
        "id": "rul_vip",
        "match": "any",
        "conditions": RULES["rul_vip"]["conditions"],
    }
    assert routes[1]["stop"] is True and routes[0]["rule"] is None
    assert routes[2]["actions"][0] == {
        "id": "act_hook",
        "name": "Hook",
        "action_type": "webhook",
        "parameters": {"url": "https://example.test/h", "data_keys": ["extra"]},
    }
    assert "sealed" not in built.routes and "abcd" not in built.routes
    # Conditions' and store_data's keys: what inbound fetches with the set (a webhook's are the
    # worker's own reads).
    assert built.data_keys == ["seen", "vips"]


def test_a_target_without_enabled_routes_has_no_set() -> None:
    assert model.route_set([], RULES, ACTIONS) is None
    assert model.route_set([_route("rte_a", 0, enabled=False)], RULES, ACTIONS) is None


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=12))
def test_route_sets_are_ordered_by_position_then_id(shape: list[tuple[int, bool]]) -> None:
    routes = [
        _route(f"rte_{i:02d}", position, enabled=enabled) for i, (position, enabled) in enumerate(shape)
    ]
    built = model.route_set(list(reversed(routes)), RULES, ACTIONS)
    expected = sorted((r["position"], r["id"]) for r in routes if r["enabled"])
    if not expected:
        assert built is None
        return
    assert built is not None
    assert [(r["position"], r["id"]) for r in json.loads(built.routes)] == expected


# ----------------------------------------------------------------------------- trailing slash


def test_one_trailing_slash_is_dropped() -> None:
    assert without_trailing_slash("/api/v1/rules/") == "/api/v1/rules"
    assert without_trailing_slash("/api/v1/rules/rul_1/") == "/api/v1/rules/rul_1"
    assert without_trailing_slash("/api/v1/rules") == "/api/v1/rules"
    assert without_trailing_slash("/") == "/"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/rules",
        "/api/v1/rules/",
        "/api/v1/rules/rul_1",
        "/api/v1/rules/rul_1/",
        "/api/v1/actions/",
        "/api/v1/actions/act_1/parameters/",
        "/api/v1/routes/",
        "/api/v1/routes/rte_1/",
    ],
)
def test_the_template_routes_both_forms_to_the_automation_function(path: str) -> None:
    match = RouteTable(Stack.load(REPO / "template.yaml").routes).match("POST", path)
    assert match is not None and match.route.function == "AutomationFunction"


def test_the_template_declares_no_path_ending_in_a_slash() -> None:
    # An HTTP API route key cannot end in "/" (SAM drops such an event's route or the deploy fails);
    # a collection's /x/ is reached through its /x/{proxy+} route, so every collection has one.
    declared = {route.path for route in Stack.load(REPO / "template.yaml").routes}
    assert not [path for path in declared if path.endswith("/")]
    for collection in ("/api/v1/rules", "/api/v1/actions", "/api/v1/routes", "/api/v1/domains"):
        assert {collection, f"{collection}/{{proxy+}}"} <= declared


def test_the_api_models_name_what_the_domain_accepts() -> None:
    from typing import get_args

    from mailroom.api.schemas import automation as schemas
    from mailroom.domain import rules as rule_model

    assert set(get_args(schemas.ActionType)) == set(model.ACTION_TYPES)
    assert set(get_args(schemas.ConditionOp)) == {*rule_model.TEXT_OPS, *rule_model.SIZE_OPS, *model.DATA_OPS}
    assert set(get_args(schemas.ConditionField)) == {*rule_model.FIELDS, "data"}

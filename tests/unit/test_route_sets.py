"""domain.route_sets and domain.mailbox_data as pure functions: decoding and compiling a route set in
the contract's format, the order routes run in, data conditions, store_data's extraction and modes,
and the work per message counted (not timed) to show evaluation stays linear in the message count."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain import mailbox_data as data
from mailroom.domain.route_sets import (
    RouteSetError,
    Stats,
    compile_route_set,
    data_values,
    evaluate,
    extract,
    ordered,
)
from mailroom.domain.rules import MessageView


def view(**fields: Any) -> MessageView:
    defaults: dict[str, Any] = {
        "from_": ("ann@example.net",),
        "to": ("inbox@example.com",),
        "subject": "Hello",
    }
    return MessageView(**{**defaults, **fields})


def route(
    route_id: str, *conditions: dict[str, Any], position: int = 0, stop: bool = False, **extra: Any
) -> dict[str, Any]:
    rule = {"id": f"rul_{route_id}", "match": extra.pop("match", "all"), "conditions": list(conditions)}
    return {
        "id": route_id,
        "name": route_id,
        "position": position,
        "stop": stop,
        "rule": rule if conditions else None,
        "actions": extra.pop(
            "actions", [{"id": "act_1", "name": "l", "action_type": "label", "parameters": {"labels": ["x"]}}]
        ),
    }


def compiled(*routes: dict[str, Any], in_order: bool = False) -> Any:
    """The set of ``routes``; ``in_order``: positioned in the order given."""
    if in_order:
        routes = tuple({**r, "position": i} for i, r in enumerate(routes))
    return compile_route_set(json.dumps(list(routes)))


def matched(route_set: Any, message: MessageView, documents: dict[str, Any] | None = None) -> list[str]:
    values = {key: data_values(doc) for key, doc in (documents or {}).items()}
    return [r.id for r in evaluate(route_set.routes, message, values).matched]


def test_a_route_without_a_rule_takes_every_message_and_stop_ends_the_run() -> None:
    route_set = compiled(route("a"), route("b", stop=True, position=1), route("c", position=2))
    assert matched(route_set, view()) == ["a", "b"]
    evaluation = evaluate(route_set.routes, view(), {})
    assert [r.route.id for r in evaluation.results] == ["a", "b"]  # c never evaluated


def test_routes_of_two_sets_run_by_position_then_id() -> None:
    mailbox = compiled(route("rte_b", position=1), route("rte_z", position=0))
    domain = compiled(route("rte_a", position=1), route("rte_c", position=5))
    assert [r.id for r in ordered([mailbox.routes, domain.routes])] == ["rte_z", "rte_a", "rte_b", "rte_c"]


def test_conditions_are_the_mailbox_rules_language() -> None:
    route_set = compiled(
        route("glob", {"field": "subject", "op": "matches", "value": "invoice *"}),
        route("regex", {"field": "from", "op": "regex", "value": "@example\\.net$"}),
        route(
            "any",
            {"field": "subject", "op": "is", "value": "nope"},
            {"field": "size", "op": "greater_than", "value": 10},
            match="any",
        ),
        route("not", {"field": "header", "header": "X-Tag", "op": "not_contains", "value": "a"}),
        in_order=True,
    )
    assert matched(route_set, view(subject="Invoice 42", size=100)) == ["glob", "regex", "any", "not"]
    assert (
        matched(route_set, view(subject="x", from_=("bob@example.org",), headers={"x-tag": ("abc",)})) == []
    )


def test_in_data_reads_a_list_an_object_or_nothing() -> None:
    route_set = compiled(
        route("in", {"field": "from", "op": "in_data", "key": "vip"}),
        route("out", {"field": "from", "op": "not_in_data", "key": "vip"}),
        route("subject", {"field": "subject", "op": "in_data", "key": "topics"}),
    )
    assert route_set.data_keys == ("vip", "topics")
    assert matched(route_set, view(), {"vip": ["ANN@example.net"], "topics": {"hello": 1}}) == [
        "in",
        "subject",
    ]
    assert matched(route_set, view(), {"vip": {"ann@example.net": True}}) == ["in"]
    assert matched(route_set, view(), {}) == ["out"]  # absent: no value, so not_in_data holds


def test_a_data_condition_reads_strings_lists_numbers_and_booleans() -> None:
    route_set = compiled(
        route("on", {"field": "data", "key": "mode", "op": "is", "value": "ON"}),
        route("three", {"field": "data", "key": "mode", "op": "is", "value": "3"}),
        route("true", {"field": "data", "key": "mode", "op": "is", "value": "true"}),
        route("none", {"field": "data", "key": "mode", "op": "not_contains", "value": "o"}),
        in_order=True,
    )
    assert matched(route_set, view(), {"mode": "on"}) == ["on"]
    assert matched(route_set, view(), {"mode": ["off", "on"]}) == ["on"]
    assert matched(route_set, view(), {"mode": 3}) == ["three", "none"]
    assert matched(route_set, view(), {"mode": True}) == ["true", "none"]
    assert matched(route_set, view(), {"mode": {"on": 1}}) == ["none"]  # an object has no text value
    assert matched(route_set, view(), {}) == ["none"]


@pytest.mark.parametrize(
    "routes",
    [
        "not json",
        json.dumps({"id": "x"}),
        json.dumps([{"name": "no id"}]),
        json.dumps(
            [{"id": "r", "rule": {"conditions": [{"field": "subject", "op": "regex", "value": "("}]}}]
        ),
        json.dumps([{"id": "r", "actions": [{"id": "a", "action_type": "teleport"}]}]),
        json.dumps(
            [
                {
                    "id": "r",
                    "actions": [
                        {"id": "a", "action_type": "store_data", "parameters": {"key": "k", "pattern": "("}}
                    ],
                }
            ]
        ),
    ],
)
def test_a_set_not_in_the_contract_format_is_refused(routes: str) -> None:
    with pytest.raises(RouteSetError):
        compile_route_set(routes)


def test_store_data_extracts_named_groups_from_its_source() -> None:
    action = (
        compiled(
            route(
                "r",
                actions=[
                    {
                        "id": "a",
                        "name": "s",
                        "action_type": "store_data",
                        "parameters": {
                            "key": "k",
                            "source": "header",
                            "header": "X-Order",
                            "pattern": r"(?P<id>\d+)(?P<suffix>-x)?",
                        },
                    }
                ],
            )
        )
        .routes[0]
        .actions[0]
    )
    assert extract(action, view(headers={"x-order": ("none", "order 77")})) == {"id": "77"}
    assert extract(action, view()) is None


def test_store_modes() -> None:
    assert data.stored(data.ABSENT, {"a": "1"}, "merge") == {"a": "1"}
    assert data.stored({"a": "0", "b": "2"}, {"a": "1"}, "merge") == {"a": "1", "b": "2"}
    assert data.stored({"b": "2"}, {"a": "1"}, "set") == {"a": "1"}
    assert data.stored([{"a": "0"}], {"a": "1"}, "append") == [{"a": "0"}, {"a": "1"}]
    with pytest.raises(data.DataError, match="object"):
        data.stored(["x"], {"a": "1"}, "merge")
    with pytest.raises(data.DataError, match="array"):
        data.stored({"x": 1}, {"a": "1"}, "append")


def test_document_limits() -> None:
    near = "x" * (data.MAX_DOCUMENT_BYTES - 2)
    assert data.size_of(data.encode(near)) == data.MAX_DOCUMENT_BYTES
    with pytest.raises(data.DataError) as too_large:
        data.encode(near + "é")  # two bytes in UTF-8
    assert too_large.value.code == "document_too_large"
    deep: Any = []
    for _ in range(data.MAX_DEPTH):
        deep = [deep]
    with pytest.raises(data.DataError) as too_deep:
        data.encode(deep)
    assert too_deep.value.code == "document_too_deep"
    assert all(data.valid_key(k) for k in ("a", "A.b-c_9", "x" * 128)) and not any(
        data.valid_key(k) for k in ("", "a/b", "x" * 129, "é", "a b")
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=60, derandomize=True)
@given(target=json_values, patch=json_values)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any) -> None:
    result = data.merge_patch(target, patch)
    if not isinstance(patch, dict):
        assert result == patch
        return
    assert isinstance(result, dict)
    for name, value in patch.items():
        if value is None:
            assert name not in result
        else:
            assert result[name] == data.merge_patch(
                target.get(name) if isinstance(target, dict) else None, value
            )
    # Applying the same patch again changes nothing (RFC 7386 patches are idempotent).
    assert data.merge_patch(result, patch) == result


# --- linear in the message count -------------------------------------------------------------------


def test_a_data_condition_costs_the_same_work_for_every_message() -> None:
    """The 1,000-entry document is converted once; each message then costs one set lookup per value
    of the field, whether it is the 1st or the 10,000th message: the work for 10,000 messages is
    exactly ten times the work for 1,000."""
    vip = [f"sender{i}@example.net" for i in range(1000)]
    route_set = compiled(
        route("vip", {"field": "from", "op": "in_data", "key": "vip"}), route("all", position=1)
    )
    documents = {"vip": data_values(vip)}

    def run(count: int) -> tuple[Stats, int]:
        stats, hits = Stats(), 0
        for number in range(count):
            message = view(from_=(f"sender{number % 2000}@example.net",))
            hits += "vip" in [r.id for r in evaluate(route_set.routes, message, documents, stats).matched]
        return stats, hits

    small, small_hits = run(1_000)
    large, large_hits = run(10_000)
    assert (small.messages, small.routes, small.tests, small.lookups) == (1_000, 2_000, 1_000, 1_000)
    assert (large.routes, large.tests, large.lookups) == (
        10 * small.routes,
        10 * small.tests,
        10 * small.lookups,
    )
    assert (small_hits, large_hits) == (1_000, 5_000)


addresses = st.sampled_from(["ann@example.net", "ANN@Example.NET", "bob@example.org", "Zoë@example.net", "x"])


@settings(max_examples=80, derandomize=True)
@given(
    document=st.lists(addresses, max_size=6) | st.dictionaries(addresses, st.integers(), max_size=4),
    sender=addresses,
)
def test_in_data_is_casefolded_membership(document: Any, sender: str) -> None:
    """The converted document answers exactly what a scan of it would."""
    route_set = compiled(route("in", {"field": "from", "op": "in_data", "key": "k"}))
    scanned = any(sender.casefold() == str(entry).casefold() for entry in document)
    assert (matched(route_set, view(from_=(sender,)), {"k": document}) == ["in"]) is scanned

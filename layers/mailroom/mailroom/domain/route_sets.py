"""Route sets: what the inbound pipeline runs for one mailbox (or every mailbox of a domain) in the
automation model (docs/automation-inbound.md). Pure: no I/O.

The automation API writes one route-set item per target (store/keys.py ``ROUTESET#``): the target's
enabled routes in position order, each with its rule's conditions and its actions' non-secret
parameters copied in, as one JSON text, and the mailbox-data keys those conditions and actions
read. Inbound decodes and compiles a set once per ``built_version`` (``compile_route_set``), then
for each message runs the routes of the mailbox's and its domain's sets in position order (then
id) until one that matched has ``stop`` (``evaluate``).

Conditions are the mailbox rules' language (domain/rules.py, the same engine) plus two that read
mailbox data documents:

- ``{"field": "data", "key": K, "op": <text op>, "value": V}``: document K as text values (a
  string is one value, a list each element, a number or a boolean its JSON text; an object, null or
  an absent document has none), tested like a header's values.
- ``{"field": <text field>, "op": "in_data" | "not_in_data", "key": K}``: whether any value of the
  field, casefolded, is a member of document K (a list's string elements, an object's keys, a
  string itself; casefolded).

Each document is converted once per version (``DataValues``: its values and a set of its members),
so a membership test costs one set lookup per field value whatever the document's size: a route
set over a 1,000-entry document is as cheap per message for the 10,000th message as for the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import re2

from mailroom.domain.rules import (
    NEGATED,
    TEXT_FIELDS,
    TEXT_OPS,
    CompiledRule,
    Condition,
    MessageView,
    Rule,
    compile_rules,
    field_values,
)

INLINE_ACTIONS = frozenset({"label", "move", "delete", "store_data"})
ASYNC_ACTIONS = frozenset({"webhook", "eventbridge", "forward", "reply"})
DATA_OPS = ("in_data", "not_in_data")
STORE_SOURCES = ("subject", "body", "from", "to", "header")
PATTERN_MAX_MEM = 1 << 20  # RE2's program budget for a store_data pattern, as for rules' patterns


class RouteSetError(ValueError):
    """A stored route set that cannot be decoded or compiled (written by a newer or broken writer)."""


@dataclass(frozen=True, slots=True)
class RouteAction:
    id: str
    name: str
    action_type: str
    parameters: Mapping[str, Any]
    pattern: Any = None  # store_data: the compiled RE2 program (named groups captured)

    @property
    def mode(self) -> str:
        return "inline" if self.action_type in INLINE_ACTIONS else "async"


@dataclass(frozen=True, slots=True)
class DataValues:
    """One mailbox-data document as conditions read it, converted once per document version."""

    values: tuple[str, ...] = ()  # for ``field: data``
    members: frozenset[str] = frozenset()  # casefolded, for ``in_data``


NO_DATA = DataValues()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def data_values(document: Any) -> DataValues:
    """``document``: the decoded JSON (None: absent or null)."""
    if document is None:
        return NO_DATA
    if isinstance(document, dict):
        return DataValues((), frozenset(str(k).casefold() for k in document))
    if isinstance(document, list):
        values = tuple(_text(v) for v in document if v is not None)
        return DataValues(values, frozenset(v.casefold() for v in values))
    text = _text(document)
    return DataValues((text,), frozenset({text.casefold()}))


@dataclass(slots=True)
class Stats:
    """What ``evaluate`` did, counted (tests assert the work per message is constant)."""

    messages: int = 0
    routes: int = 0
    tests: int = 0
    lookups: int = 0  # set lookups of in_data tests


class _Test(Protocol):
    """One compiled condition."""

    def holds(
        self, view: MessageView, data: Mapping[str, DataValues], stats: Stats
    ) -> bool: ...  # pragma: no cover


@dataclass(frozen=True, slots=True)
class _RuleTest:
    compiled: CompiledRule  # a one-condition rule of the mailbox rules' engine

    def holds(self, view: MessageView, data: Mapping[str, DataValues], stats: Stats) -> bool:
        return self.compiled.matches(view)


def _text_matcher(op: str, value: str) -> Any:
    """The rules engine's test for a text ``op`` (without negation), to apply to any string: the same
    case folding, globs and RE2 options as every other condition."""
    condition = Condition("subject", NEGATED.get(op, op), value)
    return compile_rules([Rule(id="", name="", conditions=(condition,))])[0].tests[0]


@dataclass(frozen=True, slots=True)
class _DataFieldTest:
    key: str
    negated: bool
    matcher: Any

    def holds(self, view: MessageView, data: Mapping[str, DataValues], stats: Stats) -> bool:
        found = any(self.matcher.on_value(v) for v in data.get(self.key, NO_DATA).values)
        return not found if self.negated else found


@dataclass(frozen=True, slots=True)
class _InDataTest:
    field: str
    header: str | None
    key: str
    negated: bool

    def holds(self, view: MessageView, data: Mapping[str, DataValues], stats: Stats) -> bool:
        members = data.get(self.key, NO_DATA).members
        values = field_values(view, self.field, self.header)
        stats.lookups += len(values)
        found = any(value.casefold() in members for value in values)
        return not found if self.negated else found


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise RouteSetError(f"'{name}' must be a string")
    return value


def _compile_condition(data: Mapping[str, Any]) -> _Test:
    name, op = _str(data, "field"), _str(data, "op")
    header = data.get("header")
    if op in DATA_OPS:
        if name not in TEXT_FIELDS:
            raise RouteSetError(f"{op} reads a text field, not '{name}'")
        return _InDataTest(name, header, _str(data, "key"), op == "not_in_data")
    if name == "data":
        if op not in TEXT_OPS:
            raise RouteSetError(f"a data condition takes a text operator, not '{op}'")
        return _DataFieldTest(_str(data, "key"), op in NEGATED, _text_matcher(op, _str(data, "value")))
    value = data.get("value")
    if not isinstance(value, str | int | bool):
        raise RouteSetError("a condition's value is text, a number or a boolean")
    condition = Condition(name, op, value, header)
    return _RuleTest(compile_rules([Rule(id="", name="", conditions=(condition,))])[0])


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    id: str
    name: str
    position: int
    stop: bool
    rule_id: str | None  # None: the route takes every message
    match: str
    tests: tuple[_Test, ...]
    actions: tuple[RouteAction, ...]

    def matches(self, view: MessageView, data: Mapping[str, DataValues], stats: Stats) -> bool:
        if not self.tests:
            return True
        stats.tests += len(self.tests)  # an upper bound: any/all stop early
        if self.match == "any":
            return any(test.holds(view, data, stats) for test in self.tests)
        return all(test.holds(view, data, stats) for test in self.tests)


@dataclass(frozen=True, slots=True)
class CompiledRouteSet:
    routes: tuple[CompiledRoute, ...]
    data_keys: tuple[str, ...]  # every document the set reads (conditions and store_data)
    folders: tuple[str, ...]  # the folder paths its move actions name


def _pattern(text: str) -> Any:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(text, options)
    except re2.error as exc:
        raise RouteSetError(f"invalid store_data pattern: {exc}") from exc


def _action(data: Mapping[str, Any]) -> RouteAction:
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise RouteSetError("an action's parameters are an object")
    action_type = _str(data, "action_type")
    if action_type not in INLINE_ACTIONS | ASYNC_ACTIONS:
        raise RouteSetError(f"unknown action type '{action_type}'")
    pattern = None
    if action_type == "store_data":
        _str(parameters, "key")
        if parameters.get("source", "subject") not in STORE_SOURCES:
            raise RouteSetError("store_data's source is one of " + ", ".join(STORE_SOURCES))
        pattern = _pattern(_str(parameters, "pattern"))
    return RouteAction(_str(data, "id"), str(data.get("name") or ""), action_type, parameters, pattern)


def _route(data: Mapping[str, Any]) -> CompiledRoute:
    rule = data.get("rule")
    if rule is not None and not isinstance(rule, Mapping):
        raise RouteSetError("a route's rule is an object or null")
    conditions = (rule or {}).get("conditions") or []
    return CompiledRoute(
        id=_str(data, "id"),
        name=str(data.get("name") or ""),
        position=int(data.get("position", 0)),
        stop=bool(data.get("stop", False)),
        rule_id=str(rule["id"]) if rule and rule.get("id") else None,
        match=str((rule or {}).get("match") or "all"),
        tests=tuple(_compile_condition(c) for c in conditions),
        actions=tuple(_action(a) for a in data.get("actions") or []),
    )


def _reads(route: CompiledRoute) -> Iterable[str]:
    for test in route.tests:
        if isinstance(test, _InDataTest | _DataFieldTest):
            yield test.key
    for action in route.actions:
        if action.action_type == "store_data":
            yield str(action.parameters["key"])


def compile_route_set(routes_json: str, data_keys: Iterable[str] = ()) -> CompiledRouteSet:
    """A stored set (its ``routes`` JSON text and ``data_keys``), decoded and compiled; RouteSetError
    when it is not in the contract's format. The data keys are the union of what the item names and
    what its routes read (a stale ``data_keys`` must not leave a condition without its document)."""
    try:
        decoded = json.loads(routes_json)
    except ValueError as exc:
        raise RouteSetError(f"routes is not JSON: {exc}") from exc
    if not isinstance(decoded, list) or not all(isinstance(r, Mapping) for r in decoded):
        raise RouteSetError("routes is a JSON array of objects")
    try:
        compiled = tuple(_route(r) for r in decoded)
    except (KeyError, TypeError, ValueError, re2.error) as exc:
        if isinstance(exc, RouteSetError):
            raise
        raise RouteSetError(f"a route cannot be compiled: {exc}") from exc
    keys = dict.fromkeys([*data_keys, *(k for r in compiled for k in _reads(r))])
    folders = dict.fromkeys(
        str(a.parameters.get("folder"))
        for r in compiled
        for a in r.actions
        if a.action_type == "move" and a.parameters.get("folder")
    )
    return CompiledRouteSet(ordered([compiled]), tuple(keys), tuple(folders))


def ordered(sets: Iterable[Sequence[CompiledRoute]]) -> tuple[CompiledRoute, ...]:
    """The routes of several sets (the mailbox's and its domain's) as one run: position, then id."""
    return tuple(sorted((r for routes in sets for r in routes), key=lambda r: (r.position, r.id)))


@dataclass(frozen=True, slots=True)
class RouteResult:
    route: CompiledRoute
    matched: bool


@dataclass(slots=True)
class Evaluation:
    results: list[RouteResult] = field(default_factory=list)

    @property
    def matched(self) -> list[CompiledRoute]:
        return [r.route for r in self.results if r.matched]


def evaluate(
    routes: Sequence[CompiledRoute],
    view: MessageView,
    data: Mapping[str, DataValues],
    stats: Stats | None = None,
) -> Evaluation:
    """Run ``routes`` (already ordered) on one message: each route is tested in turn, and a matched
    route with ``stop`` ends the run. The conditions see the data as it was when the message
    arrived (``store_data`` writes apply with the message, after every route ran)."""
    counted = stats if stats is not None else Stats()
    counted.messages += 1
    evaluation = Evaluation()
    for route in routes:
        counted.routes += 1
        matched = route.matches(view, data, counted)
        evaluation.results.append(RouteResult(route, matched))
        if matched and route.stop:
            break
    return evaluation


def extract(action: RouteAction, view: MessageView) -> dict[str, str] | None:
    """A ``store_data`` action's named groups from the first value of its source that the pattern
    matches (None: no match). Groups that did not take part in the match are left out."""
    parameters = action.parameters
    source = str(parameters.get("source") or "subject")
    if source == "subject":
        values: Sequence[str] = (view.subject,)
    elif source == "body":
        values = (view.body,)
    elif source == "from":
        values = view.from_
    elif source == "to":
        values = view.to
    else:
        values = field_values(view, "header", str(parameters.get("header") or ""))
    for value in values:
        found = action.pattern.search(value)
        if found is not None:
            return {name: group for name, group in found.groupdict().items() if group is not None}
    return None

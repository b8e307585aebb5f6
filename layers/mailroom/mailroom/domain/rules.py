"""Mailbox rules: the model, its validation and the engine that runs it. Pure: no I/O.

A rule set is an ordered list of rules. A rule has conditions (``match`` ``all`` or ``any`` of them;
a rule with no condition matches every message), actions, and ``stop`` (no later rule runs once it
matched). Conditions are evaluated against a ``MessageView`` (built from a parsed message by
``mail.rule_view``); the same language serves the mailbox rules of issue 13 and the automation
model of issue 14, so nothing here knows where rules are stored or what an action does.

Matching follows Sieve's default comparator (``i;ascii-casemap``, RFC 5228): every text comparison
is case-insensitive. Regular expressions run on RE2 (linear time, no backreferences), compiled once
per rule set with a memory budget; a glob (``matches``: ``*`` any run, ``?`` one character, ``\\``
escapes) is translated to RE2 too, never run on Python's backtracking engine.

Canonical form: a ``matches`` glob that is a plain substring, prefix or suffix (``*x*``, ``x*``,
``*x``) is the same test as ``contains``, ``starts_with`` or ``ends_with`` and is stored as that,
so a rule set reads back the same through Sieve (where those are written as globs).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

MAX_RULES = 250
MAX_CONDITIONS = 50
MAX_ACTIONS = 20
MAX_NAME_CHARS = 200
MAX_VALUE_CHARS = 1000  # a condition's text, glob or regular expression
MAX_HEADER_NAME_CHARS = 100
MAX_LABEL_CHARS = 100
MAX_SIZE_BYTES = 2**40
MAX_BODY_CHARS = 256 * 1024  # body conditions read the first 256 KB of text: a bounded cost per rule
REGEX_MAX_MEM = 1 << 20  # RE2's compiled-program budget per pattern: a huge automaton is refused

TEXT_FIELDS = ("from", "to", "cc", "recipient", "envelope_from", "envelope_to", "subject", "body", "header")
ADDRESS_FIELDS = ("from", "to", "cc", "recipient", "envelope_from", "envelope_to")
# Names Sieve uses for the flag fields (domain/sieve.py); not testable as ordinary headers.
RESERVED_HEADERS = frozenset({"x-mailroom-spam", "x-mailroom-attachment"})
FLAG_FIELDS = ("has_attachment", "spam", "list")
FIELDS = (*TEXT_FIELDS, "size", *FLAG_FIELDS)
TEXT_OPS = (
    "contains",
    "not_contains",
    "is",
    "not_is",
    "starts_with",
    "ends_with",
    "matches",
    "not_matches",
    "regex",
    "not_regex",
)
SIZE_OPS = ("greater_than", "less_than")
FLAG_OPS = ("is",)
ACTIONS = (
    "move",
    "add_label",
    "remove_label",
    "mark_read",
    "flag",
    "forward",
    "discard",
    "reject",
)
NEGATED = {"not_contains": "contains", "not_is": "is", "not_matches": "matches", "not_regex": "regex"}


class RuleError(ValueError):
    """A rule set that cannot be saved: ``code`` is the API's error code, ``field`` the JSON path."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: str | int | bool
    header: str | None = None  # the header's name, for field "header"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.op, "value": self.value}
        if self.header is not None:
            data["header"] = self.header
        return data


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    folder: str | None = None  # move: the folder's path
    label: str | None = None  # add_label, remove_label
    to: str | None = None  # forward: the address

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for name in ("folder", "label", "to"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    enabled: bool = True
    match: str = "all"  # all | any
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    stop: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "enabled": self.enabled,
            "match": self.match,
            "conditions": [c.as_dict() for c in self.conditions],
            "actions": [a.as_dict() for a in self.actions],
            "stop": self.stop,
        }


def rule_from_dict(data: Mapping[str, Any]) -> Rule:
    """A stored rule (already validated when it was saved)."""
    return Rule(
        id=str(data["id"]),
        name=str(data.get("name", "")),
        enabled=bool(data.get("enabled", True)),
        match=str(data.get("match", "all")),
        conditions=tuple(
            Condition(
                field=str(c["field"]),
                op=str(c["op"]),
                value=_stored_value(c["value"]),
                header=c.get("header"),
            )
            for c in data.get("conditions") or []
        ),
        actions=tuple(
            Action(type=str(a["type"]), folder=a.get("folder"), label=a.get("label"), to=a.get("to"))
            for a in data.get("actions") or []
        ),
        stop=bool(data.get("stop", False)),
    )


def _stored_value(value: Any) -> str | int | bool:
    # DynamoDB gives numbers back as Decimal.
    if isinstance(value, bool | str):
        return value
    return int(value)


# --- validation ------------------------------------------------------------------------------------


def glob_to_re2(pattern: str) -> str:
    """A Sieve ``:matches`` glob as an anchored RE2 pattern (``*`` any run, ``?`` one character,
    ``\\`` makes the next character literal)."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            out.append(re2.escape(escaped))
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re2.escape(char))
    return "^(?s:" + "".join(out) + ")$"


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.dot_nl = True
    options.never_capture = True  # rules only ask whether a pattern matches
    options.max_mem = REGEX_MAX_MEM
    options.log_errors = False
    return options


def compile_pattern(pattern: str) -> Any:
    """RE2 program for ``pattern``; ``re2.error`` when it is invalid or over the memory budget."""
    return re2.compile(pattern, _options())


_STAR, _ONE = object(), object()


def _glob_tokens(pattern: str) -> list[object]:
    """A glob as tokens: each literal character (a str) or a wildcard (``_STAR``, ``_ONE``)."""
    tokens: list[object] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            tokens.append(next(chars, "\\"))
        elif char == "*":
            tokens.append(_STAR)
        elif char == "?":
            tokens.append(_ONE)
        else:
            tokens.append(char)
    return tokens


def _literal(tokens: list[object]) -> str | None:
    return (
        "".join(t for t in tokens if isinstance(t, str)) if all(isinstance(t, str) for t in tokens) else None
    )


def canonical_condition(condition: Condition) -> Condition:
    """``matches "*x*"`` is ``contains "x"`` and so on (see the module docstring)."""
    if condition.op not in ("matches", "not_matches") or not isinstance(condition.value, str):
        return condition
    negated = condition.op == "not_matches"
    tokens = _glob_tokens(condition.value)
    exact = _literal(tokens)
    if exact is not None:
        return Condition(condition.field, "not_is" if negated else "is", exact, condition.header)
    starred_front = bool(tokens) and tokens[0] is _STAR
    starred_back = len(tokens) >= 2 and tokens[-1] is _STAR
    shapes: list[tuple[str, str | None]] = []
    if starred_front and starred_back and len(tokens) >= 3:
        shapes.append(("not_contains" if negated else "contains", _literal(tokens[1:-1])))
    if not negated and starred_back:
        shapes.append(("starts_with", _literal(tokens[:-1])))
    if not negated and starred_front:
        shapes.append(("ends_with", _literal(tokens[1:])))
    for op, literal in shapes:
        if literal:
            return Condition(condition.field, op, literal, condition.header)
    return condition


def validate_condition(condition: Condition, where: str) -> Condition:
    if condition.field not in FIELDS:
        raise RuleError("invalid_condition", f"unknown field '{condition.field}'", f"{where}.field")
    if condition.field == "header":
        name = condition.header or ""
        if (
            not name
            or len(name) > MAX_HEADER_NAME_CHARS
            or not all(33 <= ord(c) <= 126 and c != ":" for c in name)
        ):
            raise RuleError(
                "invalid_condition",
                "field 'header' needs a header name (printable ASCII, no ':')",
                f"{where}.header",
            )
        if name.lower() in RESERVED_HEADERS:
            raise RuleError(
                "invalid_condition",
                f"{name} is reserved: use field spam or has_attachment",
                f"{where}.header",
            )
    elif condition.header is not None:
        raise RuleError("invalid_condition", "'header' is only for field 'header'", f"{where}.header")
    if condition.field == "size":
        if condition.op not in SIZE_OPS:
            raise RuleError("invalid_condition", f"size takes {', '.join(SIZE_OPS)}", f"{where}.op")
        if isinstance(condition.value, bool) or not isinstance(condition.value, int):
            raise RuleError("invalid_condition", "size compares with a number of bytes", f"{where}.value")
        if not 0 <= condition.value <= MAX_SIZE_BYTES:
            raise RuleError("invalid_condition", f"size must be 0 to {MAX_SIZE_BYTES}", f"{where}.value")
        return condition
    if condition.field in FLAG_FIELDS:
        if condition.op not in FLAG_OPS or not isinstance(condition.value, bool):
            raise RuleError(
                "invalid_condition", f"{condition.field} takes op 'is' with true or false", f"{where}.value"
            )
        return condition
    if condition.op not in TEXT_OPS:
        raise RuleError("invalid_condition", f"{condition.field} takes {', '.join(TEXT_OPS)}", f"{where}.op")
    if not isinstance(condition.value, str):
        raise RuleError("invalid_condition", f"{condition.field} compares with text", f"{where}.value")
    if len(condition.value) > MAX_VALUE_CHARS:
        raise RuleError("pattern_too_long", f"at most {MAX_VALUE_CHARS} characters", f"{where}.value")
    if any(ord(c) < 32 and c not in "\t" for c in condition.value):
        raise RuleError("invalid_condition", "control characters cannot match a header", f"{where}.value")
    base = NEGATED.get(condition.op, condition.op)
    if base == "regex":
        try:
            compile_pattern(condition.value)
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise RuleError(
                "invalid_regex", f"not a valid RE2 expression: {detail}", f"{where}.value"
            ) from exc
    return canonical_condition(condition)


def validate_action(action: Action, where: str) -> Action:
    if action.type not in ACTIONS:
        raise RuleError("invalid_action", f"unknown action '{action.type}'", f"{where}.type")
    needs = {"move": "folder", "add_label": "label", "remove_label": "label", "forward": "to"}.get(
        action.type
    )
    for name in ("folder", "label", "to"):
        value = getattr(action, name)
        if name == needs:
            if not value:
                raise RuleError("invalid_action", f"{action.type} needs '{name}'", f"{where}.{name}")
        elif value is not None:
            raise RuleError("invalid_action", f"{action.type} takes no '{name}'", f"{where}.{name}")
    if action.label is not None and (
        not 0 < len(action.label) <= MAX_LABEL_CHARS
        or action.label.startswith("\\")
        or any(c.isspace() or ord(c) < 32 for c in action.label)
    ):
        # A label is also an IMAP keyword (Sieve's imap4flags): no spaces, not a \System flag.
        raise RuleError(
            "invalid_action",
            f"a label is 1 to {MAX_LABEL_CHARS} characters, without spaces, not starting with \\",
            f"{where}.label",
        )
    return action


def validate_rule(rule: Rule, where: str = "") -> Rule:
    prefix = f"{where}." if where else ""
    if not rule.name.strip() or len(rule.name) > MAX_NAME_CHARS:
        raise RuleError("validation_error", f"a name is 1 to {MAX_NAME_CHARS} characters", f"{prefix}name")
    if rule.match not in ("all", "any"):
        raise RuleError("validation_error", "match is 'all' or 'any'", f"{prefix}match")
    if len(rule.conditions) > MAX_CONDITIONS:
        raise RuleError(
            "too_many_conditions", f"at most {MAX_CONDITIONS} conditions per rule", f"{prefix}conditions"
        )
    if not rule.actions and not rule.stop:
        raise RuleError("invalid_action", "a rule needs at least one action, or stop", f"{prefix}actions")
    if len(rule.actions) > MAX_ACTIONS:
        raise RuleError("too_many_actions", f"at most {MAX_ACTIONS} actions per rule", f"{prefix}actions")
    conditions = tuple(
        validate_condition(c, f"{prefix}conditions.{i}") for i, c in enumerate(rule.conditions)
    )
    actions = tuple(validate_action(a, f"{prefix}actions.{i}") for i, a in enumerate(rule.actions))
    kinds = {a.type for a in actions}
    if "reject" in kinds and len(kinds) > 1:
        raise RuleError(
            "invalid_action",
            "reject drops the message: it cannot be combined with other actions",
            f"{prefix}actions",
        )
    # Without conditions "all" and "any" are the same test: one form, so every reading agrees.
    match = rule.match if conditions else "all"
    return Rule(rule.id, rule.name.strip(), rule.enabled, match, conditions, actions, rule.stop)


def validate_rule_set(rules: Sequence[Rule]) -> list[Rule]:
    if len(rules) > MAX_RULES:
        raise RuleError("rule_limit_reached", f"at most {MAX_RULES} rules per mailbox", "rules")
    return [validate_rule(rule, f"rules.{i}") for i, rule in enumerate(rules)]


# --- the message as rules see it ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageView:
    """What conditions read. Addresses are bare and lower case; headers are keyed by lower-case name
    (a header that occurs several times has every value)."""

    from_: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    envelope_from: tuple[str, ...] = ()  # the return path (empty for a bounce)
    envelope_to: tuple[str, ...] = ()  # the envelope recipient this copy was delivered for
    subject: str = ""
    body: str = ""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    size: int = 0
    has_attachment: bool = False
    spam: bool = False

    @property
    def is_list(self) -> bool:
        return "list-id" in self.headers


def _values(view: MessageView, condition: Condition) -> Sequence[str]:
    name = condition.field
    if name == "from":
        return view.from_
    if name == "to":
        return view.to
    if name == "cc":
        return view.cc
    if name == "recipient":
        return (*view.to, *view.cc)
    if name == "envelope_from":
        return view.envelope_from
    if name == "envelope_to":
        return view.envelope_to
    if name == "subject":
        return (view.subject,)
    if name == "body":
        return (view.body[:MAX_BODY_CHARS],)
    return view.headers.get((condition.header or "").lower(), ())


def field_values(view: MessageView, name: str, header: str | None = None) -> Sequence[str]:
    """The values a text field ``name`` has in ``view`` (for ``header``: that header's), as the
    conditions read them; the automation model's data conditions read the same (domain/route_sets.py)."""
    return _values(view, Condition(name, "is", "", header))


# --- compiled rules and evaluation ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Test:
    condition: Condition
    negated: bool
    needle: str = ""  # casefolded text for contains / is / starts_with / ends_with
    program: Any = None  # RE2 for regex / matches

    def on_value(self, value: str) -> bool:
        base = NEGATED.get(self.condition.op, self.condition.op)
        if self.program is not None:
            return self.program.search(value) is not None
        text = value.casefold()
        if base == "contains":
            return self.needle in text
        if base == "is":
            return text == self.needle
        if base == "starts_with":
            return text.startswith(self.needle)
        return text.endswith(self.needle)

    def holds(self, view: MessageView) -> bool:
        condition = self.condition
        if condition.field == "size":
            limit = int(condition.value)
            return view.size > limit if condition.op == "greater_than" else view.size < limit
        if condition.field in FLAG_FIELDS:
            actual = {"has_attachment": view.has_attachment, "spam": view.spam, "list": view.is_list}
            return actual[condition.field] is condition.value
        found = any(self.on_value(value) for value in _values(view, condition))
        # Sieve's "not": true when no value satisfies the test (also when the header is absent).
        return not found if self.negated else found


def _compile_test(condition: Condition) -> _Test:
    negated = condition.op in NEGATED
    base = NEGATED.get(condition.op, condition.op)
    if condition.field not in TEXT_FIELDS:
        return _Test(condition, False)
    value = str(condition.value)
    if base == "regex":
        return _Test(condition, negated, program=compile_pattern(value))
    if base == "matches":
        return _Test(condition, negated, program=compile_pattern(glob_to_re2(value)))
    return _Test(condition, negated, needle=value.casefold())


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    tests: tuple[_Test, ...]

    def matches(self, view: MessageView) -> bool:
        if not self.tests:
            return True
        if self.rule.match == "any":
            return any(test.holds(view) for test in self.tests)
        return all(test.holds(view) for test in self.tests)


def compile_rules(rules: Iterable[Rule]) -> list[CompiledRule]:
    """Every enabled rule with its programs compiled once (a rule set's patterns were validated when
    it was saved)."""
    return [
        CompiledRule(rule, tuple(_compile_test(c) for c in rule.conditions)) for rule in rules if rule.enabled
    ]


@dataclass(slots=True)
class Disposition:
    """What the matched rules decided for one message: its folder, labels and flags, where it is
    forwarded, and whether it is kept at all."""

    folder: str | None = None  # the path of the last ``move`` (None: where it would go anyway)
    discard: bool = False  # kept in Trash
    reject: bool = False  # not kept, never bounced
    seen: bool = False
    flagged: bool = False
    add_labels: list[str] = field(default_factory=list)
    remove_labels: list[str] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)  # rule ids, in the order they ran
    actions: list[dict[str, Any]] = field(default_factory=list)  # what ran, for the log
    evaluation_us: int = 0

    @property
    def outcome(self) -> str:
        if self.reject:
            return "rejected"
        if self.discard:
            return "discarded"
        if self.folder is not None:
            return "moved"
        return "delivered"

    def labels(self, initial: Iterable[str] = ()) -> list[str]:
        added = dict.fromkeys([*initial, *self.add_labels])
        return [label for label in added if label not in self.remove_labels]


def _apply(disposition: Disposition, rule_id: str, action: Action) -> None:
    kind = action.type
    if kind == "move":
        disposition.folder = action.folder
    elif kind == "add_label" and action.label:
        if action.label in disposition.remove_labels:
            disposition.remove_labels.remove(action.label)
        disposition.add_labels.append(action.label)
    elif kind == "remove_label" and action.label:
        if action.label in disposition.add_labels:
            disposition.add_labels.remove(action.label)
        disposition.remove_labels.append(action.label)
    elif kind == "mark_read":
        disposition.seen = True
    elif kind == "flag":
        disposition.flagged = True
    elif kind == "forward" and action.to and action.to not in disposition.forwards:
        disposition.forwards.append(action.to)
    elif kind == "discard":
        disposition.discard = True
    elif kind == "reject":
        disposition.reject = True
    disposition.actions.append({"rule_id": rule_id, **action.as_dict()})


def evaluate(rules: Sequence[CompiledRule], view: MessageView) -> Disposition:
    """Run the rules in order: every matching rule's actions apply; a matching rule with ``stop``
    (or a reject) ends the run. Deterministic: the same rules and message give the same result."""
    started = time.perf_counter_ns()
    disposition = Disposition()
    for compiled in rules:
        if not compiled.matches(view):
            continue
        disposition.matched.append(compiled.rule.id)
        for action in compiled.rule.actions:
            _apply(disposition, compiled.rule.id, action)
        if compiled.rule.stop or disposition.reject:
            break
    disposition.evaluation_us = (time.perf_counter_ns() - started) // 1000
    return disposition

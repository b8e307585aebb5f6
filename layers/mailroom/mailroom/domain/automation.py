"""The automation model of mailtrigger-api.txt, the pure part: rules, actions, routes, their
validation, and the route sets inbound reads (docs/automation.md). No I/O here.

An organization's **rules** are reusable condition sets: domain/rules.py's condition language (the
same as the mailbox rules'), plus two conditions over a mailbox's data documents
(``{"field": "data", "key": K, "op": <text op>, "value": V}`` and ``{"field": <text field>, "op":
"in_data" | "not_in_data", "key": K}``). Its **actions** are typed configurations whose parameters
are the pydantic models below (their JSON Schema is what ``/actions/{id}/parameters`` answers). A
**route** joins a target (one mailbox, or every mailbox of a domain), a rule (or none: every
message) and an ordered list of actions, with a position and a stop flag.

Inbound never reads those items one by one: every change rebuilds the **route set** of each target
it affects, one JSON document with the target's enabled routes in order, their rule's conditions
and their actions' parameters copied in (never a secret), plus the data keys it reads
(``route_set``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import re2
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailroom.domain import addresses
from mailroom.domain import rules as rule_model

# ----------------------------------------------------------------------------- limits

MAX_RULES = 500  # per organization (the HEAD item's rule_count, checked in the transaction)
MAX_ACTIONS = 500  # per organization (action_count)
MAX_ROUTES = 500  # per organization (route_count)
MAX_ROUTES_PER_TARGET = 50  # one mailbox's, or one domain's, routes
MAX_ACTIONS_PER_ROUTE = 20
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000
MAX_POSITION = 1_000_000
# A route set is one DynamoDB item (400 KB at most, key and attribute names included).
MAX_ROUTE_SET_BYTES = 380_000
# One change rebuilds every route set it affects in the transaction that makes it (100 operations
# and 4 MB at most): the change itself, the HEAD item and a target check take three.
MAX_ROUTE_SETS_PER_CHANGE = 96
MAX_CHANGE_BYTES = 3_800_000

MAX_FORWARD_TARGETS = 10
MAX_LABELS = 20
MAX_WEBHOOK_DATA_KEYS = 10
MAX_URL_CHARS = 2048
MAX_TEMPLATE_CHARS = 64 * 1024
MAX_PATTERN_CHARS = 1000
MAX_DETAIL_TYPE_CHARS = 128  # EventBridge's limit for DetailType
MAX_FOLDER_CHARS = 255  # mail/folders.py's limit (the path is made canonical by the service)

DATA_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
_DATA_KEY_RE = re.compile(DATA_KEY_PATTERN)

ACTION_TYPES = ("webhook", "eventbridge", "forward", "reply", "label", "move", "store_data", "delete")
# Inline actions fold into how inbound stores the message; async ones run after it, from a queue.
INLINE_ACTIONS = frozenset({"label", "move", "store_data", "delete"})
ASYNC_ACTIONS = frozenset({"webhook", "eventbridge", "forward", "reply"})
# What a template (webhook body, reply) can read: docs/automation.md, "Template context".
TEMPLATE_VARIABLES = frozenset({"message", "mailbox", "route", "action", "data"})
DEFAULT_DETAIL_TYPE = "Mailroom Automation"
DEFAULT_REPLY_SUBJECT = "Re: {{ message.subject }}"

DATA_OPS = ("in_data", "not_in_data")


def mode_of(action_type: str) -> str:
    return "inline" if action_type in INLINE_ACTIONS else "async"


def secret_context(org_id: str, action_id: str) -> dict[str, str]:
    """The KMS encryption context of a webhook action's secret (the contract's: a ciphertext only
    decrypts on its own action)."""
    return {"org_id": org_id, "action_id": action_id}


class AutomationError(ValueError):
    """Something that cannot be saved: ``code`` is the API's error code, ``fields`` the failing JSON
    paths with a message each."""

    def __init__(self, code: str, message: str, fields: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields) or [("", message)]


def is_data_key(key: str) -> bool:
    return bool(_DATA_KEY_RE.match(key))


DataKey = Annotated[str, Field(pattern=DATA_KEY_PATTERN, description="1 to 128 of A-Z a-z 0-9 _ . -")]


# ----------------------------------------------------------------------------- action parameters


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class WebhookParameters(Parameters):
    """An https POST signed per Standard Webhooks with the action's own secret."""

    url: str = Field(max_length=MAX_URL_CHARS, description="An https URL on a public address")
    body_template: str | None = Field(
        default=None,
        max_length=MAX_TEMPLATE_CHARS,
        description="A Jinja2 template (sandboxed) that renders the JSON body over the template context; "
        "omitted: the default JSON payload",
    )
    data_keys: list[DataKey] = Field(
        default_factory=list,
        max_length=MAX_WEBHOOK_DATA_KEYS,
        description="Mailbox data documents the template reads as data[key]",
    )

    @field_validator("data_keys")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class EventBridgeParameters(Parameters):
    """One PutEvents entry on an event bus (source ``mailroom``)."""

    event_bus_arn: str = Field(
        max_length=1600, description="arn:aws:events:<region>:<account>:event-bus/<name>"
    )
    detail_type: str = Field(default=DEFAULT_DETAIL_TYPE, min_length=1, max_length=MAX_DETAIL_TYPE_CHARS)


def _address(value: str) -> str:
    try:
        return addresses.normalize_any(value)
    except addresses.InvalidAddress as exc:
        raise ValueError(str(exc)) from exc


class ForwardParameters(Parameters):
    """The message forwarded from the mailbox (loop-safe, like the mailbox's own forwarding)."""

    to: list[Annotated[str, Field(max_length=320), AfterValidator(_address)]] = Field(
        min_length=1, max_length=MAX_FORWARD_TARGETS
    )

    @field_validator("to")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ReplyParameters(Parameters):
    """A templated reply to the sender, with the auto-reply restraint (never to lists, bulk,
    auto-submitted or own mail; once per sender per ``interval_days``)."""

    subject: str = Field(default=DEFAULT_REPLY_SUBJECT, min_length=1, max_length=998)
    text: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    html: str | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    interval_days: int = Field(default=1, ge=1, le=365)


def _label(value: str) -> str:
    action = rule_model.Action("add_label", label=value)
    try:
        rule_model.validate_action(action, "label")
    except rule_model.RuleError as exc:
        raise ValueError(exc.message) from exc
    return value


class LabelParameters(Parameters):
    labels: list[Annotated[str, AfterValidator(_label)]] = Field(min_length=1, max_length=MAX_LABELS)

    @field_validator("labels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class MoveParameters(Parameters):
    folder: str = Field(
        min_length=1,
        max_length=MAX_FOLDER_CHARS,
        description="A folder path (INBOX, Archive, Projects/2026...); a folder the mailbox lacks is "
        "logged as folder_missing and the message stays where it would go",
    )


def _named_groups(pattern: str) -> str:
    options = re2.Options()
    options.max_mem = rule_model.REGEX_MAX_MEM
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"not a valid RE2 expression: {detail}") from exc
    if not compiled.groupindex:
        raise ValueError("the pattern needs at least one named group, (?P<name>...)")
    return pattern


class StoreDataParameters(Parameters):
    """Named groups of a pattern matched on a part of the message, written into a data document."""

    key: DataKey
    source: Literal["subject", "body", "from", "to", "header"]
    header: str | None = Field(
        default=None,
        max_length=rule_model.MAX_HEADER_NAME_CHARS,
        description="The header's name, for source header",
    )
    pattern: Annotated[str, AfterValidator(_named_groups)] = Field(
        max_length=MAX_PATTERN_CHARS, description="RE2, with named groups: each becomes a field"
    )
    mode: Literal["set", "merge", "append"] = Field(
        default="merge",
        description="set: the document is the groups; merge: an object updated with them; append: a "
        "list the groups are appended to",
    )

    @field_validator("header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and (not value or not all(33 <= ord(c) <= 126 and c != ":" for c in value)):
            raise ValueError("a header name is printable ASCII without ':'")
        return value

    @model_validator(mode="after")
    def _header_for_header_source(self) -> StoreDataParameters:
        if (self.source == "header") != (self.header is not None):
            raise ValueError("header names the header for source header, and only then")
        return self


class DeleteParameters(Parameters):
    """The message goes to Trash."""


PARAMETER_MODELS: dict[str, type[Parameters]] = {
    "webhook": WebhookParameters,
    "eventbridge": EventBridgeParameters,
    "forward": ForwardParameters,
    "reply": ReplyParameters,
    "label": LabelParameters,
    "move": MoveParameters,
    "store_data": StoreDataParameters,
    "delete": DeleteParameters,
}


def parameters_schema(action_type: str) -> dict[str, Any]:
    """The JSON Schema of an action type's parameters."""
    return PARAMETER_MODELS[action_type].model_json_schema()


def _location(loc: Iterable[int | str]) -> str:
    return ".".join(["parameters", *(str(part) for part in loc)])


TEMPLATE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "webhook": ("body_template",),
    "reply": ("subject", "text", "html"),
}
"""The parameters that are Jinja2 templates: their syntax and variables are checked where the
template engine lives (mail/templates.py, by the service), against ``TEMPLATE_VARIABLES``."""


def validate_parameters(action_type: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters in canonical form (defaults filled in, addresses normalized);
    AutomationError ``invalid_parameters`` naming every failing field. Templates and folder paths
    are checked by the service too (``TEMPLATE_PARAMETERS``; mail/ is a sibling of this package)."""
    model = PARAMETER_MODELS.get(action_type)
    if model is None:
        raise AutomationError(
            "validation_error",
            f"unknown action type '{action_type}'",
            [("action_type", f"one of {', '.join(ACTION_TYPES)}")],
        )
    try:
        parsed = model.model_validate(dict(raw))
    except ValidationError as exc:
        fields = [(_location(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
        raise AutomationError(
            "invalid_parameters", f"the {action_type} action's parameters are invalid", fields
        ) from exc
    return parsed.model_dump(exclude_none=True)


def data_keys_of_action(action_type: str, parameters: Mapping[str, Any]) -> list[str]:
    """The data documents an action reads when inbound runs it (store_data's own document)."""
    return [str(parameters["key"])] if action_type == "store_data" else []


# ----------------------------------------------------------------------------- rules


def _condition(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    field = str(raw.get("field", ""))
    op = str(raw.get("op", ""))
    key = raw.get("key")
    if field == "data" or op in DATA_OPS:
        if not isinstance(key, str) or not is_data_key(key):
            raise rule_model.RuleError(
                "invalid_condition",
                "a data condition names its document's key (A-Z a-z 0-9 _ . -)",
                f"{where}.key",
            )
    elif key is not None:
        raise rule_model.RuleError("invalid_condition", "'key' is only for data conditions", f"{where}.key")
    if op in DATA_OPS:
        if field not in rule_model.TEXT_FIELDS:
            raise rule_model.RuleError(
                "invalid_condition",
                f"{op} tests a text field: {', '.join(rule_model.TEXT_FIELDS)}",
                f"{where}.field",
            )
        if raw.get("value") is not None:
            raise rule_model.RuleError(
                "invalid_condition", f"{op} takes no value: the document is the list", f"{where}.value"
            )
        # The header's name is checked like any header condition's.
        rule_model.validate_condition(rule_model.Condition(field, "contains", "", raw.get("header")), where)
        condition: dict[str, Any] = {"field": field, "op": op, "key": key}
        if raw.get("header") is not None:
            condition["header"] = raw["header"]
        return condition
    if field == "data":
        if raw.get("header") is not None:
            raise rule_model.RuleError(
                "invalid_condition", "'header' is only for field 'header'", f"{where}.header"
            )
        if op not in rule_model.TEXT_OPS:
            raise rule_model.RuleError(
                "invalid_condition", f"data takes {', '.join(rule_model.TEXT_OPS)}", f"{where}.op"
            )
        value = raw.get("value")
        if not isinstance(value, str):
            raise rule_model.RuleError("invalid_condition", "data compares with text", f"{where}.value")
        # Checked as a subject test: the same operators, text and patterns.
        checked = rule_model.validate_condition(rule_model.Condition("subject", op, value), where)
        return {"field": "data", "key": key, "op": checked.op, "value": checked.value}
    value = raw.get("value")
    if value is None or not isinstance(value, str | int | bool):
        raise rule_model.RuleError("invalid_condition", "a condition needs a value", f"{where}.value")
    checked = rule_model.validate_condition(rule_model.Condition(field, op, value, raw.get("header")), where)
    return checked.as_dict()


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    name: str
    match: str
    conditions: list[dict[str, Any]]
    description: str | None = None


def validate_rule(
    name: str, match: str, conditions: Sequence[Mapping[str, Any]], description: str | None = None
) -> RuleDefinition:
    """A rule definition in canonical form; AutomationError with the failing field otherwise."""
    try:
        if not name.strip() or len(name) > MAX_NAME_CHARS:
            raise rule_model.RuleError(
                "validation_error", f"a name is 1 to {MAX_NAME_CHARS} characters", "name"
            )
        if match not in ("all", "any"):
            raise rule_model.RuleError("validation_error", "match is 'all' or 'any'", "match")
        if len(conditions) > rule_model.MAX_CONDITIONS:
            raise rule_model.RuleError(
                "too_many_conditions",
                f"at most {rule_model.MAX_CONDITIONS} conditions per rule",
                "conditions",
            )
        checked = [_condition(c, f"conditions.{i}") for i, c in enumerate(conditions)]
    except rule_model.RuleError as exc:
        raise AutomationError(exc.code, exc.message, [(exc.field, exc.message)]) from exc
    # Without conditions "all" and "any" are the same test: one form, as for mailbox rules.
    return RuleDefinition(name.strip(), match if checked else "all", checked, description)


def data_keys_of_conditions(conditions: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(c["key"]) for c in conditions if c.get("key") is not None]


# ----------------------------------------------------------------------------- routes


def target_of(route: Mapping[str, Any]) -> tuple[str, str]:
    """``("mailbox", id)`` or ``("domain", id)``: whose route set holds the route."""
    target = route["target"]
    if target.get("mailbox_id"):
        return ("mailbox", str(target["mailbox_id"]))
    return ("domain", str(target["domain_id"]))


def check_action_ids(action_ids: Sequence[str]) -> list[str]:
    if not 1 <= len(action_ids) <= MAX_ACTIONS_PER_ROUTE:
        raise AutomationError(
            "validation_error",
            f"a route runs 1 to {MAX_ACTIONS_PER_ROUTE} actions",
            [("action_ids", f"1 to {MAX_ACTIONS_PER_ROUTE} action ids")],
        )
    if len(set(action_ids)) != len(action_ids):
        raise AutomationError(
            "validation_error", "an action is named twice", [("action_ids", "each action once")]
        )
    return list(action_ids)


@dataclass(frozen=True, slots=True)
class RouteSet:
    routes: str  # the JSON text the contract names
    data_keys: list[str]
    count: int


def route_set(
    routes: Iterable[Mapping[str, Any]],
    rules: Mapping[str, Mapping[str, Any]],
    actions: Mapping[str, Mapping[str, Any]],
) -> RouteSet | None:
    """A target's route set from its routes and the rules and actions they name (None: no enabled
    route, so no item). Enabled routes only, by position then id; no secret is copied."""
    enabled = sorted(
        (r for r in routes if r.get("enabled", True)), key=lambda r: (int(r["position"]), str(r["id"]))
    )
    if not enabled:
        return None
    entries: list[dict[str, Any]] = []
    data_keys: dict[str, None] = {}
    for route in enabled:
        rule = rules.get(str(route["rule_id"])) if route.get("rule_id") else None
        if rule is not None:
            data_keys.update(dict.fromkeys(data_keys_of_conditions(rule.get("conditions") or [])))
        route_actions = []
        for action_id in route.get("action_ids") or []:
            action = actions[str(action_id)]
            parameters = dict(action.get("parameters") or {})
            data_keys.update(dict.fromkeys(data_keys_of_action(str(action["action_type"]), parameters)))
            route_actions.append(
                {
                    "id": action["id"],
                    "name": action["name"],
                    "action_type": action["action_type"],
                    "parameters": parameters,
                }
            )
        entries.append(
            {
                "id": route["id"],
                "name": route["name"],
                "position": int(route["position"]),
                "stop": bool(route.get("stop", False)),
                "rule": None
                if rule is None
                else {
                    "id": rule["id"],
                    "match": rule["match"],
                    "conditions": list(rule.get("conditions") or []),
                },
                "actions": route_actions,
            }
        )
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False)
    return RouteSet(text, sorted(data_keys), len(entries))


def route_set_too_large(route_set_: RouteSet) -> bool:
    return len(route_set_.routes.encode()) > MAX_ROUTE_SET_BYTES

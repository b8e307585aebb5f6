"""Request and response models of the automation resources (``/api/v1/rules``, ``/actions``,
``/routes``; docs/automation.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from mailroom.api.models import Strict, Timestamp
from mailroom.domain import automation as model
from mailroom.domain import rules as rule_model

Id = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=model.MAX_NAME_CHARS)]
Description = Annotated[str | None, Field(max_length=model.MAX_DESCRIPTION_CHARS, description="Free text")]
ConditionField = Literal[
    "from",
    "to",
    "cc",
    "recipient",
    "envelope_from",
    "envelope_to",
    "subject",
    "body",
    "header",
    "size",
    "has_attachment",
    "spam",
    "list",
    "data",
]
ConditionOp = Literal[
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
    "greater_than",
    "less_than",
    "in_data",
    "not_in_data",
]
ActionType = Literal["webhook", "eventbridge", "forward", "reply", "label", "move", "store_data", "delete"]


def _no_nulls(values: Any, nullable: tuple[str, ...]) -> Any:
    """PATCH bodies: a field sent as null is refused unless it may be cleared."""
    if isinstance(values, dict):
        for name, value in values.items():
            if value is None and name not in nullable:
                raise ValueError(f"{name} cannot be null")
    return values


# ----------------------------------------------------------------------------- rules


class AutomationCondition(Strict):
    """One test, in the mailbox rules' language (docs/rules.md) plus two over the mailbox's data
    documents: `{"field": "data", "key": K, "op": <text op>, "value": V}` tests document K (a string,
    each element of a list, a number's or boolean's JSON text); `{"field": <text field>, "op":
    "in_data" | "not_in_data", "key": K}` tests whether any value of the field equals (casefolded)
    an element of the list K (or a key of the object K)."""

    field: ConditionField
    op: ConditionOp
    value: str | int | bool | None = Field(
        default=None,
        description=f"Text (at most {rule_model.MAX_VALUE_CHARS} characters: a glob for matches, RE2 for "
        "regex), bytes for size, true/false for the flags; none for in_data / not_in_data",
    )
    header: str | None = Field(
        default=None,
        max_length=rule_model.MAX_HEADER_NAME_CHARS,
        description="The header's name, for field header",
    )
    key: str | None = Field(
        default=None,
        max_length=128,
        json_schema_extra={"pattern": model.DATA_KEY_PATTERN},
        description="The mailbox data document's key, for data conditions",
    )

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


Conditions = Annotated[
    list[AutomationCondition],
    Field(
        max_length=rule_model.MAX_CONDITIONS,
        description=f"At most {rule_model.MAX_CONDITIONS} (422 too_many_conditions); none: every message",
    ),
]


class AutomationRuleInput(Strict):
    name: Name
    description: Description = None
    match: Literal["all", "any"] = Field(default="all", description="all or any of the conditions")
    conditions: Conditions = Field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "match": self.match,
            "conditions": [c.as_dict() for c in self.conditions],
        }


class AutomationRulePatch(Strict):
    """Only the fields sent change; `description: null` clears it."""

    name: Name | None = None
    description: Description = None
    match: Literal["all", "any"] | None = None
    conditions: Conditions | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, values: Any) -> Any:
        return _no_nulls(values, ("description",))

    def fields(self) -> dict[str, Any]:
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        if self.conditions is not None:
            changes["conditions"] = [c.as_dict() for c in self.conditions]
        return changes


class AutomationConditionView(BaseModel):
    field: ConditionField
    op: ConditionOp
    value: str | int | bool | None = None
    header: str | None = None
    key: str | None = None


class AutomationRuleView(BaseModel):
    id: str = Field(description="rul_...")
    name: str
    description: str | None
    match: Literal["all", "any"]
    conditions: list[AutomationConditionView]
    version: int = Field(description="Moves on every change")
    created_at: Timestamp
    updated_at: Timestamp


# ----------------------------------------------------------------------------- actions

PARAMETERS_HELP = (
    "By action_type (GET /api/v1/actions/{id}/parameters answers the JSON Schema): "
    "webhook {url, body_template?, data_keys?}; eventbridge {event_bus_arn, detail_type?}; "
    "forward {to: [addresses]}; reply {subject?, text, html?, interval_days?}; label {labels}; "
    "move {folder}; store_data {key, source, header?, pattern, mode?}; delete {}. "
    "422 invalid_parameters names each failing field (parameters.url ...)."
)


class AutomationActionInput(Strict):
    name: Name
    description: Description = None
    action_type: ActionType
    parameters: dict[str, Any] = Field(default_factory=dict, description=PARAMETERS_HELP)

    def fields(self) -> dict[str, Any]:
        return self.model_dump()


class AutomationActionPatch(Strict):
    """Only the fields sent change; `parameters`, when sent, replaces them whole; `action_type`, when
    sent, must be the action's own (422 action_type_immutable)."""

    name: Name | None = None
    description: Description = None
    action_type: ActionType | None = None
    parameters: dict[str, Any] | None = Field(default=None, description=PARAMETERS_HELP)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, values: Any) -> Any:
        return _no_nulls(values, ("description",))

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class AutomationActionView(BaseModel):
    id: str = Field(description="act_...")
    name: str
    description: str | None
    action_type: ActionType
    mode: Literal["inline", "async"] = Field(
        description="inline: applied as the message is stored (label, move, store_data, delete); async: "
        "run after it, from a queue, with retries (webhook, eventbridge, forward, reply)"
    )
    parameters: dict[str, Any]
    secret_last_four: str | None = Field(description="webhook: the end of its signing secret")
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class AutomationActionWithSecret(AutomationActionView):
    secret: str | None = Field(
        default=None,
        description="webhook: the Standard Webhooks signing secret (whsec_...), shown only in this response",
    )


class ActionParametersView(BaseModel):
    action_id: str
    action_type: ActionType
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON Schema of the type's parameters")
    values: dict[str, Any] = Field(description="The action's current parameters")


# ----------------------------------------------------------------------------- routes


class RouteTarget(Strict):
    """Exactly one: a mailbox, or every mailbox of a domain (422 otherwise)."""

    mailbox_id: Id | None = None
    domain_id: Id | None = None


class RouteInput(Strict):
    name: Name
    target: RouteTarget
    rule_id: Id | None = Field(default=None, description="rul_...; null: every message")
    action_ids: list[Id] = Field(
        min_length=1,
        max_length=model.MAX_ACTIONS_PER_ROUTE,
        description="act_..., run in this order (422 unknown_action for another organization's)",
    )
    position: int | None = Field(
        default=None,
        ge=0,
        le=model.MAX_POSITION,
        description="Routes of a target run by position, then id; omitted: after its last route (PUT: "
        "the route's own, on the same target)",
    )
    stop: bool = Field(default=False, description="No later route runs once this one matched")
    enabled: bool = True

    def fields(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"target", "position"})
        data["target"] = self.target.model_dump(exclude_none=True)
        if self.position is not None:
            data["position"] = self.position
        return data


class RoutePatch(Strict):
    """Only the fields sent change; `rule_id: null` makes the route match every message."""

    name: Name | None = None
    target: RouteTarget | None = None
    rule_id: Id | None = None
    action_ids: list[Id] | None = Field(default=None, min_length=1, max_length=model.MAX_ACTIONS_PER_ROUTE)
    position: int | None = Field(default=None, ge=0, le=model.MAX_POSITION)
    stop: bool | None = None
    enabled: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, values: Any) -> Any:
        return _no_nulls(values, ("rule_id",))

    def fields(self) -> dict[str, Any]:
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        if self.target is not None:
            changes["target"] = self.target.model_dump(exclude_none=True)
        return changes


class RouteTargetView(BaseModel):
    mailbox_id: str | None = None
    domain_id: str | None = None


class RouteView(BaseModel):
    id: str = Field(description="rte_...")
    name: str
    target: RouteTargetView
    rule_id: str | None
    action_ids: list[str]
    position: int
    stop: bool
    enabled: bool
    version: int
    created_at: Timestamp
    updated_at: Timestamp

"""Mailbox rules, auto-reply, Sieve and the processing log (``/api/v1/mailboxes/{id}/rules`` ...).

Ops tokens need the ``mailboxes:rules:*`` / ``mailboxes:auto-reply:*`` scopes. The rules (and their
Sieve form and log) are also readable with the mailbox's own message token holding ``messages:read``
and writable with ``messages:write``: an agent manages its own filters. Another mailbox's id with a
message token is 404, exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailroom import errors as kinds
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import ACCESS_ATTRIBUTE, acts_as, current, require
from mailroom.api.schemas.rules import ActionType, LoggedAction
from mailroom.domain import auto_reply as auto_reply_rules
from mailroom.domain import rules as model
from mailroom.domain import sieve
from mailroom.domain.principal import Principal
from mailroom.domain.tokens import TokenType
from mailroom.services import auto_reply as auto_reply_service
from mailroom.services import mailboxes as mailbox_service
from mailroom.services import rules as service
from mailroom.services import sieve as sieve_service
from mailroom.store.table import Item, Table

router = api_router("/api/v1/mailboxes", tags=["rules"])

RULES_READ, RULES_WRITE = "mailboxes:rules:read", "mailboxes:rules:write"
AUTO_REPLY_READ, AUTO_REPLY_WRITE = "mailboxes:auto-reply:read", "mailboxes:auto-reply:write"

FieldName = Literal[
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
]
Operator = Literal[
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
]


class Condition(Strict):
    """One test. Text fields (from, to, cc, recipient (to or cc), envelope_from (the return path),
    envelope_to (the envelope recipient): the bare addresses; subject; body; header) take the
    text operators, case-insensitively; `size` takes greater_than / less_than with bytes;
    has_attachment, spam and list (a List-Id header) take `is` with true or false."""

    field: FieldName
    op: Operator
    value: Annotated[
        str | int | bool,
        Field(
            description=f"Text (at most {model.MAX_VALUE_CHARS} characters: a glob for matches, an RE2 "
            "expression for regex), a number of bytes for size, true/false for the flags"
        ),
    ]
    header: str | None = Field(
        default=None,
        max_length=model.MAX_HEADER_NAME_CHARS,
        description="The header's name, for field header",
    )


class Action(Strict):
    type: ActionType = Field(
        description="move (folder: an existing folder's path, else 422 unknown_folder), add_label / "
        "remove_label (label), mark_read, flag, forward (to: an address; loop-safe, counted in the "
        "forwarding limit), discard (kept in Trash), reject (not kept, never bounced)"
    )
    folder: str | None = Field(default=None, max_length=255)
    label: str | None = Field(default=None, max_length=model.MAX_LABEL_CHARS)
    to: str | None = Field(default=None, max_length=320)


class RuleInput(Strict):
    name: str = Field(min_length=1, max_length=model.MAX_NAME_CHARS)
    enabled: bool = True
    match: Literal["all", "any"] = Field(default="all", description="all or any of the conditions")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"maxItems": model.MAX_CONDITIONS},
        description=f"At most {model.MAX_CONDITIONS} (422 too_many_conditions); none: every message",
    )
    actions: list[Action] = Field(
        default_factory=list,
        json_schema_extra={"maxItems": model.MAX_ACTIONS},
        description="Run in order; at least one, unless the rule only stops (422 invalid_action)",
    )
    stop: bool = Field(default=False, description="No later rule runs once this one matched")

    def rule(self, rule_id: str = "") -> model.Rule:
        return model.Rule(
            id=rule_id,
            name=self.name,
            enabled=self.enabled,
            match=self.match,
            conditions=tuple(model.Condition(c.field, c.op, c.value, c.header) for c in self.conditions),
            actions=tuple(model.Action(a.type, a.folder, a.label, a.to) for a in self.actions),
            stop=self.stop,
        )


class CreateRule(RuleInput):
    position: int | None = Field(
        default=None, ge=0, le=model.MAX_RULES, description="0-based; omitted: after the last rule"
    )


class ConditionView(BaseModel):
    field: FieldName
    op: Operator
    value: str | int | bool
    header: str | None = None


class ActionView(BaseModel):
    type: ActionType
    folder: str | None = None
    label: str | None = None
    to: str | None = None


class RuleView(BaseModel):
    id: str
    name: str
    enabled: bool
    match: Literal["all", "any"]
    conditions: list[ConditionView]
    actions: list[ActionView]
    stop: bool
    position: int = Field(description="0-based; rules run in this order")


class RuleSetMeta(BaseModel):
    total: int
    updated_at: Timestamp | None


class RuleList(BaseModel):
    data: list[RuleView]
    meta: RuleSetMeta


class Reorder(Strict):
    rule_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        json_schema_extra={"maxItems": model.MAX_RULES},
        description="Every rule id of the mailbox, each once, in the new order (else 422 invalid_order)",
    )


class SieveScript(BaseModel):
    script: str = Field(description="The Sieve script (RFC 5228 and the extensions docs/rules.md lists)")
    size: int = Field(description="Bytes, UTF-8")


class SieveInput(BaseModel):
    # Not Strict: a script's leading and trailing whitespace are its own.
    model_config = ConfigDict(extra="forbid")

    script: str = Field(
        max_length=sieve.MAX_SCRIPT_BYTES * 2,
        description=f"At most {sieve.MAX_SCRIPT_BYTES} bytes of UTF-8 (422 sieve_too_large)",
    )


class AutoReplyInput(Strict):
    enabled: bool
    subject: str | None = Field(
        default=None,
        max_length=auto_reply_rules.MAX_SUBJECT_CHARS,
        description='Omitted or null: "Auto: " and the original subject',
    )
    text: str | None = Field(default=None, max_length=auto_reply_rules.MAX_BODY_CHARS)
    html: str | None = Field(default=None, max_length=auto_reply_rules.MAX_BODY_CHARS)
    start: Timestamp | None = Field(default=None, description="Replies from this moment (null: now)")
    end: Timestamp | None = Field(default=None, description="Until this moment (null: until disabled)")
    interval_days: int = Field(
        default=auto_reply_rules.DEFAULT_INTERVAL_DAYS,
        ge=1,
        le=auto_reply_rules.MAX_INTERVAL_DAYS,
        description="At most one reply per sender per this many days",
    )


class AutoReplyView(BaseModel):
    enabled: bool
    subject: str | None
    text: str | None
    html: str | None
    start: Timestamp | None
    end: Timestamp | None
    interval_days: int
    updated_at: Timestamp | None


class LogEntry(BaseModel):
    id: str
    message_id: str | None = Field(description="The stored message (null when it was rejected)")
    ses_message_id: str | None
    from_: str | None = Field(alias="from")
    subject: str | None
    rules_matched: list[str]
    actions: list[LoggedAction]
    outcome: str = Field(
        description="delivered, moved, discarded, rejected; folder_missing (the rule's folder was "
        "deleted: delivered where it would have gone); over_quota, no_mailbox"
    )
    folder: str | None
    auto_reply: str | None = Field(
        description="sent, already_replied, not_sent:<code>, pending, or why not (list, precedence, "
        "auto_submitted, no_return_path, system_sender, own_address, spam, outside_schedule, "
        "discarded, rejected); null without an auto-reply"
    )
    evaluation_us: int = Field(description="Time the rules took, in microseconds")
    created_at: Timestamp


# --- loading the mailbox ----------------------------------------------------------------------------

MailboxId = Annotated[str, Path(max_length=64, description="The mailbox's id (mbx_...)")]
RuleId = Annotated[str, Path(max_length=64, description="The rule's id (rul_...)")]
NOT_FOUND = errors(e404="not_found: no such mailbox in this organization")
RULE_NOT_FOUND = errors(e404="not_found: no such mailbox, or no such rule in it")
CONCURRENT = errors(e409="concurrent_update: the rules changed meanwhile; read and retry")
RULE_ERRORS = (
    "validation_error, invalid_condition, invalid_regex, pattern_too_long, invalid_action, "
    "unknown_folder, invalid_forwarding_target, unknown_target, forwarding_loop; limits: "
    "rule_limit_reached, too_many_conditions, too_many_actions, too_many_targets, rule_set_too_large"
)


@dataclass(frozen=True, slots=True)
class LoadedMailbox:
    principal: Principal
    item: Item


def mailbox_for(ops_scope: str, message_scope: str | None) -> Callable[[Request, str], LoadedMailbox]:
    """The mailbox the path names, for an ops token with ``ops_scope`` or (when ``message_scope`` is
    given) for that mailbox's own message token with ``message_scope``."""

    def load(request: Request, mailbox_id: MailboxId) -> LoadedMailbox:
        principal = current(request)
        if principal.token_type is TokenType.MESSAGE and message_scope is not None:
            require(message_scope, token_type=TokenType.MESSAGE)(request)
            if principal.mailbox_id != mailbox_id:
                raise kinds.not_found("Mailbox")
        else:
            require(ops_scope)(request)
        return LoadedMailbox(principal, mailbox_service.load(Table(), principal.org_id, mailbox_id))

    # The document's x-mailroom-scopes reads this (require() is called inside, out of its sight).
    access = {TokenType.OPS.value: [ops_scope]}
    if message_scope is not None:
        access[TokenType.MESSAGE.value] = [message_scope]
    setattr(load, ACCESS_ATTRIBUTE, access)
    return load


RulesReader = Annotated[LoadedMailbox, Depends(mailbox_for(RULES_READ, "messages:read"))]
RulesWriter = Annotated[LoadedMailbox, Depends(mailbox_for(RULES_WRITE, "messages:write"))]
AutoReplyReader = Annotated[LoadedMailbox, Depends(mailbox_for(AUTO_REPLY_READ, None))]
AutoReplyWriter = Annotated[LoadedMailbox, Depends(mailbox_for(AUTO_REPLY_WRITE, None))]


def _audit(request: Request, mailbox: LoadedMailbox, **details: Any) -> None:
    audit_target(request, "mailbox", mailbox.item["id"], address=mailbox.item["address"], **details)


def _list(rule_set: service.RuleSet) -> dict[str, Any]:
    return {
        "data": [service.rule_view(rule, position) for position, rule in enumerate(rule_set.rules)],
        "meta": {"total": len(rule_set.rules), "updated_at": rule_set.updated_at},
    }


# --- rules ------------------------------------------------------------------------------------------


@router.get(
    "/{mailbox_id}/rules",
    name="mailbox.rules.list",
    response_model=RuleList,
    summary="List a mailbox's rules",
    responses=NOT_FOUND,
)
async def list_rules(mailbox: RulesReader) -> dict[str, Any]:
    """Every rule of the mailbox (at most 250), in the order they run on incoming mail."""
    return _list(service.load(Table(), mailbox.item))


@router.post(
    "/{mailbox_id}/rules",
    name="mailbox.rules.create",
    status_code=201,
    response_model=One[RuleView],
    summary="Add a rule",
    responses={**NOT_FOUND, **CONCURRENT, **errors(e422=RULE_ERRORS)},
)
async def create_rule(body: CreateRule, request: Request, mailbox: RulesWriter) -> dict[str, Any]:
    """Add a rule at `position` (default: last). It runs on mail received from now on, after the
    blocked senders and before the message is stored."""
    _audit(request, mailbox, rule=body.name)
    rule = service.validated(body.rule())
    position, created = service.create_rule(Table(), mailbox.item, rule, position=body.position)
    return one(service.rule_view(created, position))


@router.patch(
    "/{mailbox_id}/rules/reorder",
    name="mailbox.rules.reorder",
    response_model=RuleList,
    summary="Reorder the rules",
    responses={**NOT_FOUND, **CONCURRENT, **errors(e422="invalid_order: not exactly every rule id once")},
)
async def reorder_rules(body: Reorder, request: Request, mailbox: RulesWriter) -> dict[str, Any]:
    """Put the rules in the order given: the full list of the mailbox's rule ids, each once."""
    _audit(request, mailbox, reorder=len(body.rule_ids))
    return _list(service.reorder(Table(), mailbox.item, body.rule_ids))


@router.get(
    "/{mailbox_id}/rules/{rule_id}",
    name="mailbox.rules.get",
    response_model=One[RuleView],
    summary="Get a rule",
    responses=RULE_NOT_FOUND,
)
async def get_rule(rule_id: RuleId, mailbox: RulesReader) -> dict[str, Any]:
    """One rule with its conditions, actions and position."""
    position, rule = service.find(service.load(Table(), mailbox.item), rule_id)
    return one(service.rule_view(rule, position))


@router.put(
    "/{mailbox_id}/rules/{rule_id}",
    name="mailbox.rules.replace",
    response_model=One[RuleView],
    summary="Replace a rule",
    responses={**RULE_NOT_FOUND, **CONCURRENT, **errors(e422=RULE_ERRORS)},
)
async def replace_rule(
    rule_id: RuleId, body: RuleInput, request: Request, mailbox: RulesWriter
) -> dict[str, Any]:
    """Replace the rule's name, conditions, actions, enabled and stop; it keeps its id and position."""
    _audit(request, mailbox, rule_id=rule_id)
    rule = service.validated(body.rule(rule_id))
    position, replaced = service.replace_rule(Table(), mailbox.item, rule_id, rule)
    return one(service.rule_view(replaced, position))


@router.delete(
    "/{mailbox_id}/rules/{rule_id}",
    name="mailbox.rules.delete",
    status_code=204,
    summary="Delete a rule",
    responses={**RULE_NOT_FOUND, **CONCURRENT},
)
async def delete_rule(rule_id: RuleId, request: Request, mailbox: RulesWriter) -> Response:
    """Delete the rule; the rules after it move up one position."""
    _audit(request, mailbox, rule_id=rule_id)
    service.delete_rule(Table(), mailbox.item, rule_id)
    return Response(status_code=204)


# --- processing log -----------------------------------------------------------------------------------


@router.get(
    "/{mailbox_id}/logs",
    name="mailbox.rules.logs",
    response_model=ListOf[LogEntry],
    summary="The rules' processing log",
    responses=NOT_FOUND,
)
async def list_logs(
    request: Request,
    mailbox: RulesReader,
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """One entry per message the mailbox's rules or auto-reply looked at, newest first, kept 30 days:
    the rules that matched, what their actions did, where the message went, the auto-reply."""
    page = service.log_page(Table(), mailbox.item, per_page=page_query.per_page, cursor=page_query.cursor)
    data = [service.log_view(item) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


# --- auto-reply ---------------------------------------------------------------------------------------


@router.get(
    "/{mailbox_id}/auto-reply",
    name="mailbox.auto_reply.get",
    response_model=One[AutoReplyView],
    summary="The mailbox's auto-reply",
    responses=NOT_FOUND,
)
async def get_auto_reply(mailbox: AutoReplyReader) -> dict[str, Any]:
    """The vacation reply: whether it is on, its text, schedule and interval."""
    return one(auto_reply_service.view(auto_reply_service.load(Table(), mailbox.item)))


@router.put(
    "/{mailbox_id}/auto-reply",
    name="mailbox.auto_reply.set",
    response_model=One[AutoReplyView],
    summary="Set the auto-reply",
    responses={
        **NOT_FOUND,
        **CONCURRENT,
        **errors(e422="validation_error, auto_reply_empty: enabled without text or html"),
    },
)
async def set_auto_reply(body: AutoReplyInput, request: Request, mailbox: AutoReplyWriter) -> dict[str, Any]:
    """Replace the auto-reply. It answers each sender at most once per `interval_days`, and never
    mail that is automatic, bulk or list mail, from a system address, without a return path, from
    the mailbox itself, or spam (RFC 3834, RFC 5230)."""
    _audit(request, mailbox, auto_reply=body.enabled)
    settings = auto_reply_service.settings_of(
        enabled=body.enabled,
        subject=body.subject,
        text=body.text,
        html=body.html,
        start=body.start,
        end=body.end,
        interval_days=body.interval_days,
    )
    saved = auto_reply_service.set_auto_reply(Table(), mailbox.item, settings)
    return one(auto_reply_service.view(saved))


# --- Sieve --------------------------------------------------------------------------------------------


def _script(text: str) -> dict[str, Any]:
    return {"script": text, "size": len(text.encode())}


def _may(principal: Principal, scope: str) -> bool:
    """The auto-reply (a script's vacation) is an ops setting with scopes of its own."""
    return acts_as(principal.token_type, TokenType.OPS) and principal.has(scope)


@router.get(
    "/{mailbox_id}/sieve",
    name="mailbox.sieve.get",
    response_model=One[SieveScript],
    summary="The rules and auto-reply as a Sieve script",
    responses=NOT_FOUND,
)
async def get_sieve(mailbox: RulesReader) -> dict[str, Any]:
    """The mailbox's rules (in order, each under a `# rule:[name]` comment) and its auto-reply
    (a `vacation`, only for an ops token that also holds mailboxes:auto-reply:read), written as one
    Sieve script that `PUT` reads back to the same rules."""
    with_reply = _may(mailbox.principal, AUTO_REPLY_READ)
    return one(_script(sieve_service.script_of(Table(), mailbox.item, with_auto_reply=with_reply)))


@router.put(
    "/{mailbox_id}/sieve",
    name="mailbox.sieve.set",
    response_model=One[SieveScript],
    summary="Replace the rules and auto-reply with a Sieve script",
    responses={
        **NOT_FOUND,
        **CONCURRENT,
        **errors(
            e403="insufficient_scope: the script has a vacation and the caller may not write the "
            "auto-reply (mailboxes:auto-reply:write, ops token)",
            e422="sieve_syntax (the line and column in the message and in `fields`), sieve_unsupported "
            "(naming the extension, test or action), sieve_too_large, and every rule error: " + RULE_ERRORS,
        ),
    },
)
async def put_sieve(body: SieveInput, request: Request, mailbox: RulesWriter) -> dict[str, Any]:
    """Parse the script, translate it to rules and an auto-reply, and replace both at once. A script
    with any error changes nothing. The auto-reply is replaced (turned off when the script has no
    `vacation`) only for an ops token that also holds mailboxes:auto-reply:write; for any other
    caller it is left as it is, and a script with a `vacation` is 403 insufficient_scope. The
    response is the script as Mailroom now renders it."""
    _audit(request, mailbox, sieve_bytes=len(body.script.encode()))
    text = sieve_service.replace_script(
        Table(),
        mailbox.item,
        body.script,
        write_auto_reply=_may(mailbox.principal, AUTO_REPLY_WRITE),
        read_auto_reply=_may(mailbox.principal, AUTO_REPLY_READ),
    )
    return one(_script(text))

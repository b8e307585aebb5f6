"""Mailbox rules: create, replace, delete, reorder, and the processing log (docs/rules.md).

The rules of a mailbox are one item (store/rules.py), rewritten whole on every change under the
version it was read with, so concurrent edits never lose one another (409 ``concurrent_update``).
What the pure model cannot check is checked here, at save time: a ``move`` names an existing folder
(422 ``unknown_folder``: Mailroom does not create folders behind the user's back, and a typo must not
file mail into a folder nobody sees); a ``forward`` names a valid address, not the mailbox itself,
an existing mailbox or alias when it is on one of the organization's domains, and the distinct
forwarding targets of every rule plus the mailbox's own forwarding stay within the forwarding limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses as address_rules
from mailroom.domain.rules import MAX_RULES, Rule, RuleError, rule_from_dict, validate_rule, validate_rule_set
from mailroom.mail import folders
from mailroom.services.forwarding import MAX_FORWARDING_TARGETS, check_internal_target
from mailroom.store import mail as mail_store
from mailroom.store import rules as store
from mailroom.store.table import Item, Page, Table

MAX_RULE_SET_BYTES = 256 * 1024  # the stored rules: well under DynamoDB's 400 KB item limit
LIMIT_CODES = frozenset(
    {"rule_limit_reached", "too_many_conditions", "too_many_actions", "rule_set_too_large"}
)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: list[Rule]
    folder_keys: dict[str, str]  # a move's folder path → the folder's key when it was saved
    version: int
    updated_at: str | None


def invalid(error: RuleError) -> errors.Invalid:
    kind = errors.LimitReached if error.code in LIMIT_CODES else errors.Invalid
    return kind(error.code, error.message, fields=[{"field": error.field, "message": error.message}])


def rule_set_of(item: Item | None) -> RuleSet:
    if not item:
        return RuleSet([], {}, 0, None)
    return RuleSet(
        rules=[rule_from_dict(r) for r in item.get("rules") or []],
        folder_keys={str(k): str(v) for k, v in (item.get("folder_keys") or {}).items()},
        version=int(item.get("version", 0)),
        updated_at=item.get("updated_at"),
    )


def load(table: Table, mailbox: Item) -> RuleSet:
    return rule_set_of(store.get_rule_set(table, mailbox["org_id"], mailbox["id"]))


def rule_view(rule: Rule, position: int) -> dict[str, Any]:
    return {**rule.as_dict(), "position": position}


def find(rule_set: RuleSet, rule_id: str) -> tuple[int, Rule]:
    for position, rule in enumerate(rule_set.rules):
        if rule.id == rule_id:
            return position, rule
    raise errors.not_found("Rule")


# --- checks the model cannot make ------------------------------------------------------------------


def _folder_keys(table: Table, mailbox: Item, rules: Sequence[Rule]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for index, rule in enumerate(rules):
        for number, action in enumerate(rule.actions):
            if action.type != "move" or action.folder is None:
                continue
            where = f"rules.{index}.actions.{number}.folder"
            try:
                path = folders.canonical(action.folder)
            except folders.InvalidFolder as exc:
                raise errors.validation(str(exc), field=where, code="unknown_folder") from exc
            if path in keys:
                continue
            key = folders.system_key(path)
            if key is None:
                folder = mail_store.folder_by_path(table, mailbox["org_id"], mailbox["id"], path)
                if folder is None:
                    raise errors.validation(
                        f"no folder '{path}' in this mailbox (create it first)",
                        field=where,
                        code="unknown_folder",
                    )
                key = str(folder["key"])
            keys[path] = key
    return keys


def _canonical_folders(rules: Sequence[Rule]) -> list[Rule]:
    """Folder paths as stored (``inbox`` → ``INBOX``, no stray slashes); invalid ones stay for the
    check to name."""

    def path(value: str | None) -> str | None:
        try:
            return folders.canonical(value) if value is not None else None
        except folders.InvalidFolder:
            return value

    return [
        replace(
            rule,
            actions=tuple(replace(a, folder=path(a.folder)) if a.type == "move" else a for a in rule.actions),
        )
        for rule in rules
    ]


def _check_forwards(table: Table, mailbox: Item, rules: Sequence[Rule]) -> list[Rule]:
    checked: list[Rule] = []
    targets: set[str] = {str(t) for t in (mailbox.get("forwarding") or {}).get("targets") or []}
    hosted_cache: dict[str, bool] = {}
    for index, rule in enumerate(rules):
        actions = []
        for number, action in enumerate(rule.actions):
            if action.type == "forward" and action.to is not None:
                where = f"rules.{index}.actions.{number}.to"
                try:
                    target = address_rules.normalize_any(action.to)
                except address_rules.InvalidAddress as exc:
                    raise errors.validation(
                        f"{where}: {exc}", field=where, code="invalid_forwarding_target"
                    ) from exc
                if target == mailbox["address"]:
                    raise errors.validation(
                        "a mailbox cannot forward to itself", field=where, code="forwarding_loop"
                    )
                if target not in targets:
                    check_internal_target(table, mailbox["org_id"], target, where, hosted_cache)
                    targets.add(target)
                actions.append(replace(action, to=target))
            else:
                actions.append(action)
        checked.append(replace(rule, actions=tuple(actions)))
    if len(targets) > MAX_FORWARDING_TARGETS:
        raise errors.LimitReached(
            "too_many_targets",
            f"the rules and the mailbox's forwarding reach {len(targets)} distinct forwarding targets; "
            f"at most {MAX_FORWARDING_TARGETS}",
            fields=[{"field": "actions", "message": "too many forwarding targets"}],
        )
    return checked


def prepared(table: Table, mailbox: Item, rules: Sequence[Rule]) -> tuple[list[Rule], dict[str, str]]:
    """Validated, canonical rules and the keys of the folders they move to (422 when anything is
    wrong; nothing is written)."""
    try:
        valid = validate_rule_set(rules)
    except RuleError as exc:
        raise invalid(exc) from exc
    valid = _check_forwards(table, mailbox, _canonical_folders(valid))
    keys = _folder_keys(table, mailbox, valid)
    return valid, keys


def stored_fields(rules: Sequence[Rule], folder_keys: dict[str, str]) -> Item:
    fields = {
        "rules": [rule.as_dict() for rule in rules],
        "folder_keys": folder_keys,
        "updated_at": clock.now_iso(),
    }
    size = len(json.dumps(fields, separators=(",", ":")).encode())
    if size > MAX_RULE_SET_BYTES:
        raise errors.LimitReached(
            "rule_set_too_large",
            f"the rules take {size} bytes; at most {MAX_RULE_SET_BYTES} per mailbox",
            fields=[{"field": "rules", "message": "rule set too large"}],
        )
    return fields


def save_rules(table: Table, mailbox: Item, rules: Sequence[Rule], *, version: int) -> RuleSet:
    valid, folder_keys = prepared(table, mailbox, rules)
    fields = stored_fields(valid, folder_keys)
    try:
        store.save(table, mailbox["org_id"], mailbox["id"], rule_set=(fields, version))
    except store.MailboxGone as gone:
        raise errors.not_found("Mailbox") from gone
    except store.VersionChanged as changed:
        raise errors.concurrent_update() from changed
    return RuleSet(valid, folder_keys, version + 1, fields["updated_at"])


# --- use cases ---------------------------------------------------------------------------------------


def new_rule_id() -> str:
    return ids.new_id("rul")


def create_rule(table: Table, mailbox: Item, rule: Rule, *, position: int | None = None) -> tuple[int, Rule]:
    current = load(table, mailbox)
    if len(current.rules) >= MAX_RULES:
        raise errors.LimitReached(
            "rule_limit_reached",
            f"at most {MAX_RULES} rules per mailbox",
            fields=[{"field": "rules", "message": "rule limit reached"}],
        )
    rule = replace(rule, id=new_rule_id())
    at = len(current.rules) if position is None else min(max(position, 0), len(current.rules))
    rules = [*current.rules[:at], rule, *current.rules[at:]]
    saved = save_rules(table, mailbox, rules, version=current.version)
    return at, saved.rules[at]


def replace_rule(table: Table, mailbox: Item, rule_id: str, rule: Rule) -> tuple[int, Rule]:
    current = load(table, mailbox)
    position, _old = find(current, rule_id)
    rules = list(current.rules)
    rules[position] = replace(rule, id=rule_id)
    saved = save_rules(table, mailbox, rules, version=current.version)
    return position, saved.rules[position]


def delete_rule(table: Table, mailbox: Item, rule_id: str) -> None:
    current = load(table, mailbox)
    position, _rule = find(current, rule_id)
    rules = [r for i, r in enumerate(current.rules) if i != position]
    save_rules(table, mailbox, rules, version=current.version)


def reorder(table: Table, mailbox: Item, order: Sequence[str]) -> RuleSet:
    """Put the rules in the order given: exactly the ids of every rule, each once (else 422
    ``invalid_order``: a partial list would leave the rest's positions to guesswork)."""
    current = load(table, mailbox)
    by_id = {rule.id: rule for rule in current.rules}
    if len(order) != len(set(order)) or set(order) != set(by_id):
        missing = sorted(set(by_id) - set(order))
        unknown = sorted(set(order) - set(by_id))
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
                "repeated ids" if len(order) != len(set(order)) else "",
            )
            if part
        )
        raise errors.validation(
            f"the order must list every rule id of the mailbox exactly once ({detail})",
            field="rule_ids",
            code="invalid_order",
        )
    return save_rules(table, mailbox, [by_id[rule_id] for rule_id in order], version=current.version)


def validated(rule: Rule) -> Rule:
    """One rule checked by the pure model (the API's request before anything is read)."""
    try:
        return validate_rule(rule)
    except RuleError as exc:
        raise invalid(exc) from exc


def log_page(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> Page:
    return store.log_page(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)


def log_view(item: Item) -> dict[str, Any]:
    return {
        "id": f"log_{str(item['SK']).rpartition('#')[2]}",
        "message_id": item.get("message_id"),
        "ses_message_id": item.get("ses_message_id"),
        "from": item.get("from"),
        "subject": item.get("subject"),
        "rules_matched": list(item.get("rules_matched") or []),
        "actions": [dict(a) for a in item.get("actions") or []],
        "outcome": item.get("outcome"),
        "folder": item.get("folder"),
        "auto_reply": item.get("auto_reply"),
        "evaluation_us": int(item.get("evaluation_us", 0)),
        "created_at": item.get("created_at"),
    }

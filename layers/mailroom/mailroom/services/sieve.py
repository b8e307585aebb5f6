"""A mailbox's rules and auto-reply as a Sieve script (domain/sieve.py; docs/rules.md).

``PUT`` replaces every rule and the auto-reply with what the script says, in one transaction under
the versions read, after the whole script was parsed, translated and checked like rules sent one by
one (folders exist, forwarding targets valid and within the limit): a script with an error changes
nothing, and the rules in force keep working.

The script's ``vacation`` is the auto-reply, which has scopes of its own: a caller that may not read
the auto-reply gets the rules without it, and one that may not write it leaves it as it is (a
script with a ``vacation`` is then refused, 403 ``insufficient_scope``). The router says which.
"""

from __future__ import annotations

from dataclasses import replace

from mailroom import clock, errors
from mailroom.domain import auto_reply as auto_reply_rules
from mailroom.domain import sieve
from mailroom.domain.auto_reply import AutoReply
from mailroom.services import auto_reply as auto_reply_service
from mailroom.services import rules as rule_service
from mailroom.store import rules as store
from mailroom.store.table import Item, Table


def script_of(table: Table, mailbox: Item, *, with_auto_reply: bool) -> str:
    rule_set = rule_service.load(table, mailbox)
    if not with_auto_reply:
        return sieve.render(rule_set.rules, None)
    settings = auto_reply_rules.from_item(auto_reply_service.load(table, mailbox))
    return sieve.render(rule_set.rules, settings)


def _refusal(error: sieve.SieveError) -> errors.Invalid:
    where = f" (line {error.line}, column {error.column})" if error.line is not None else ""
    field = "script" if error.line is None else f"script:{error.line}:{error.column}"
    kind = errors.LimitReached if error.code == "sieve_too_large" else errors.Invalid
    return kind(
        error.code,
        f"{error.message}{where}",
        fields=[{"field": field, "message": error.message}],
        hint="Nothing was changed: the rules in force keep running.",
    )


def replace_script(
    table: Table, mailbox: Item, script: str, *, write_auto_reply: bool, read_auto_reply: bool
) -> str:
    """Replace the rules and (``write_auto_reply``) the auto-reply with the script's; returns the
    script as now rendered (with the auto-reply when ``read_auto_reply``)."""
    try:
        translation = sieve.translate(script)
    except sieve.SieveError as error:
        raise _refusal(error) from error
    if translation.auto_reply is not None and not write_auto_reply:
        raise errors.Forbidden(
            "insufficient_scope",
            "The script's vacation sets the mailbox's auto-reply: that needs an ops token with "
            "mailboxes:auto-reply:write.",
            hint="Remove the vacation to replace the rules only (the auto-reply is then left as it is).",
        )
    rules = [replace(rule, id=rule_service.new_rule_id()) for rule in translation.rules]
    valid, folder_keys = rule_service.prepared(table, mailbox, rules)
    current_rules = rule_service.load(table, mailbox)
    rule_fields = rule_service.stored_fields(valid, folder_keys)
    current_reply = auto_reply_service.load(table, mailbox)
    if not write_auto_reply:
        _save(table, mailbox, rule_set=(rule_fields, current_rules.version))
        kept = auto_reply_rules.from_item(current_reply) if read_auto_reply else None
        return sieve.render(valid, kept)
    settings = translation.auto_reply or replace(auto_reply_rules.from_item(current_reply), enabled=False)
    settings = auto_reply_service.validated(_bounded(settings))
    reply_fields = {**settings.as_dict(), "updated_at": clock.now_iso()}
    _save(
        table,
        mailbox,
        rule_set=(rule_fields, current_rules.version),
        auto_reply=(reply_fields, int((current_reply or {}).get("version", 0))),
    )
    return sieve.render(valid, settings if read_auto_reply else None)


def _save(
    table: Table,
    mailbox: Item,
    *,
    rule_set: tuple[Item, int],
    auto_reply: tuple[Item, int] | None = None,
) -> None:
    try:
        store.save(table, mailbox["org_id"], mailbox["id"], rule_set=rule_set, auto_reply=auto_reply)
    except store.MailboxGone as gone:
        raise errors.not_found("Mailbox") from gone
    except store.VersionChanged as changed:
        raise errors.concurrent_update() from changed


def _bounded(settings: AutoReply) -> AutoReply:
    """A vacation's texts within the auto-reply's own limits (422 naming the field otherwise)."""
    for name, limit in (
        ("subject", auto_reply_rules.MAX_SUBJECT_CHARS),
        ("text", auto_reply_rules.MAX_BODY_CHARS),
        ("html", auto_reply_rules.MAX_BODY_CHARS),
    ):
        value = getattr(settings, name)
        if value is not None and len(value) > limit:
            raise errors.validation(f"the vacation's {name} is over {limit} characters", field="script")
    return settings

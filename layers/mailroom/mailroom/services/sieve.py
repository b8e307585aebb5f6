"""A mailbox's rules and auto-reply as a Sieve script (domain/sieve.py; docs/rules.md).

``PUT`` replaces every rule and the auto-reply with what the script says, in one transaction under
the versions read, after the whole script was parsed, translated and checked like rules sent one by
one (folders exist, forwarding targets valid and within the limit): a script with an error changes
nothing, and the rules in force keep working.
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


def script_of(table: Table, mailbox: Item) -> str:
    rule_set = rule_service.load(table, mailbox)
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


def replace_script(table: Table, mailbox: Item, script: str) -> str:
    """Replace the rules and the auto-reply with the script's; returns the script as now rendered."""
    try:
        translation = sieve.translate(script)
    except sieve.SieveError as error:
        raise _refusal(error) from error
    rules = [replace(rule, id=rule_service.new_rule_id()) for rule in translation.rules]
    valid, folder_keys = rule_service.prepared(table, mailbox, rules)
    current_rules = rule_service.load(table, mailbox)
    current_reply = auto_reply_service.load(table, mailbox)
    settings = translation.auto_reply or replace(auto_reply_rules.from_item(current_reply), enabled=False)
    settings = auto_reply_service.validated(_bounded(settings))
    reply_fields = {**settings.as_dict(), "updated_at": clock.now_iso()}
    try:
        store.save(
            table,
            mailbox["org_id"],
            mailbox["id"],
            rule_set=(rule_service.stored_fields(valid, folder_keys), current_rules.version),
            auto_reply=(reply_fields, int((current_reply or {}).get("version", 0))),
        )
    except store.MailboxGone as gone:
        raise errors.not_found("Mailbox") from gone
    except store.VersionChanged as changed:
        raise errors.concurrent_update() from changed
    return sieve.render(valid, settings)


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

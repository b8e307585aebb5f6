"""Inbound mail's rules stage (docs/rules.md): after recipient expansion, before storing, each
mailbox's rules run on the message in order, and decide its folder, labels and flags, extra
forwards, a discard (kept in Trash) or a reject (not kept, never bounced), and whether the mailbox's
auto-reply answers it.

The rules and the auto-reply come from the screening expansion made for the mailbox (one
BatchGetItem with its blocked-sender keys), so this stage reads nothing. Forwards go through the
expansion's own forwarding path (``Expansion.target``): loop-safe, one copy per target, refused for
spam, an internal target delivered to its mailbox (whose rules then run too). The processing log
entry is written in the transaction that stores the message (services/inbound.py).

A message SES marks as spam stays in Spam: rules still label, flag, discard or reject it, but a
``move`` does not take it out (a broad rule such as "from contains @partner" must not pull spam into
a work folder).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mailroom import clock
from mailroom.domain import auto_reply
from mailroom.domain.auto_reply import AutoReply
from mailroom.domain.rule_view import view_of
from mailroom.domain.rules import CompiledRule, Disposition, MessageView, compile_rules, evaluate
from mailroom.mail import folders
from mailroom.mail.parse import ParsedMessage
from mailroom.services import inbound_automation
from mailroom.services.inbound_routing import Copy, Expansion
from mailroom.services.mail_delivery import Incoming, Outcome, deliver, source_message_id
from mailroom.services.rules import RuleSet, rule_set_of
from mailroom.store import keys
from mailroom.store import rules as rule_store
from mailroom.store.mail import Stored
from mailroom.store.rules import Screening
from mailroom.store.table import Item, Table
from mailroom.store.txn import Op, Rejected, check

COMPILED_CACHE_SIZE = 256  # rule sets kept compiled in a warm function (keyed by version)
_compiled: OrderedDict[tuple[str, str, int, str], tuple[RuleSet, list[CompiledRule]]] = OrderedDict()


@dataclass(slots=True)
class Decision:
    """What the rules (and the auto-reply's restraint) decided for one mailbox's copy."""

    disposition: Disposition
    folder_key: str | None = None  # None: where it goes anyway (Inbox, or Spam)
    folder_path: str | None = None
    test: bool = False  # a test message (services/testmail.py): its log entry says so
    auto_reply: AutoReply | None = None  # set when this message is to be answered
    auto_reply_note: str | None = None  # the outcome, or why not
    forwards: dict[str, str] = field(default_factory=dict)  # target → forwarded or why not
    automation: inbound_automation.Run | None = None  # the routes' run (a mailbox with routes)

    @property
    def rejected(self) -> bool:
        return self.disposition.reject


def compiled_rules(org_id: str, mailbox_id: str, stored: Item | None) -> tuple[RuleSet, list[CompiledRule]]:
    """The mailbox's rules as stored, decoded and compiled once per rule-set version and function
    instance (decoding 100 rules and compiling their RE2 programs per message would cost more than
    evaluating them)."""
    if not stored:
        return rule_set_of(None), []
    cache_key = (org_id, mailbox_id, int(stored.get("version", 0)), str(stored.get("updated_at")))
    found = _compiled.get(cache_key)
    if found is None:
        rule_set = rule_set_of(rule_store.decoded(stored))
        found = (rule_set, compile_rules(rule_set.rules))
        _compiled[cache_key] = found
        while len(_compiled) > COMPILED_CACHE_SIZE:
            _compiled.popitem(last=False)
    else:
        _compiled.move_to_end(cache_key)
    return found


def decide(
    screening: Screening,
    view: MessageView,
    *,
    mailbox: Item,
    via: str,
    envelope_from: str | None,
    spam: bool,
    at: datetime,
    routes: inbound_automation.Inputs | None = None,
) -> Decision | None:
    """None for a mailbox with no rules, no auto-reply and no routes (delivered as always, with no
    log entry). The routes run after the rules (services/inbound_automation.py)."""
    rule_set, compiled = compiled_rules(str(mailbox["org_id"]), str(mailbox["id"]), screening.rule_set)
    settings = auto_reply.from_item(screening.auto_reply)
    if not rule_set.rules and not settings.enabled and routes is None:
        return None
    disposition = evaluate(compiled, view)
    automation = inbound_automation.run(routes, view, disposition, spam=spam) if routes is not None else None
    decision = Decision(disposition, automation=automation)
    folder_keys = dict(rule_set.folder_keys)
    if automation is not None and automation.folder is not None:
        folder_keys[automation.folder[0]] = automation.folder[1]
    if disposition.discard:
        decision.folder_key, decision.folder_path = "trash", "Trash"
    elif disposition.folder is not None and not spam:
        decision.folder_path = disposition.folder
        decision.folder_key = folder_keys.get(disposition.folder)
    if settings.enabled:
        if not settings.active_at(at):
            decision.auto_reply_note = "outside_schedule"
        elif disposition.reject or disposition.discard:
            decision.auto_reply_note = disposition.outcome
        else:
            decision.auto_reply_note = auto_reply.refusal(
                view.headers,
                return_path=envelope_from,
                own_addresses=[str(mailbox["address"]), via],
                spam=spam,
                virus=False,
            )
            if decision.auto_reply_note is None:
                decision.auto_reply = settings
                decision.auto_reply_note = "pending"
    return decision


def run(
    expansion: Expansion, message: ParsedMessage, *, envelope_from: str | None, spam: bool
) -> dict[str, Decision]:
    """Decide for every copy the expansion planned (and for the copies a rule's internal forward
    adds), then send each decision's forwards through the expansion."""
    plan = expansion.plan
    view = view_of(message, spam=spam, envelope_from=envelope_from)
    at = clock.utcnow()
    decisions: dict[str, Decision] = {}
    seen: set[str] = set()
    while True:
        pending = [mailbox_id for mailbox_id in plan.copies if mailbox_id not in seen]
        if not pending:
            return decisions
        for mailbox_id in pending:
            seen.add(mailbox_id)
            copy = plan.copies[mailbox_id]
            decision = decide(
                expansion.screen(copy.mailbox),
                replace(view, envelope_to=(copy.via,)),
                mailbox=copy.mailbox,
                via=copy.via,
                envelope_from=envelope_from,
                spam=spam,
                at=at,
                routes=expansion.automation(copy.mailbox),
            )
            if decision is not None:
                decisions[mailbox_id] = decision
                _forward(expansion, copy, decision)


def _forward(expansion: Expansion, copy: Copy, decision: Decision) -> None:
    mailbox = copy.mailbox
    for target in decision.disposition.forwards:
        hosted = expansion.directory.hosted_domain(expansion.plan.org_id, target) is not None
        if not hosted and mailbox.get("paused"):
            # As for the mailbox's own forwarding: a paused mailbox sends nothing, the copy stays.
            expansion.plan.held["mailbox_paused"] += 1
            decision.forwards[target] = "mailbox_paused"
            continue
        not_sent = expansion.target(
            target,
            via=copy.via,
            depth=1,
            domain_id=copy.domain_id,
            source=str(mailbox["address"]),
            source_tags={"mailbox_id": str(mailbox["id"]), "rule": "forward"},
        )
        if not_sent:
            expansion.plan.held[not_sent] += 1
        decision.forwards[target] = not_sent or "forwarded"


# --- what the stored message and the log carry ----------------------------------------------------


def folder_check(org_id: str, mailbox_id: str, decision: Decision) -> list[Op]:
    """A custom folder a rule files into must still exist when the message is stored (it may have
    been deleted since the rule was saved): checked in the storing transaction, role ``rule_folder``."""
    key = decision.folder_key
    if key is None or folders.is_system_key(key):
        return []
    return [
        check("rule_folder", keys.mailbox_pk(org_id, mailbox_id), keys.folder_sk(key), "attribute_exists(PK)")
    ]


NOT_KEPT = frozenset({"rejected", Stored.OVER_QUOTA.value, Stored.NO_MAILBOX.value})


def log_entry(
    decision: Decision,
    *,
    message_id: str | None,
    ses_message_id: str,
    message: ParsedMessage,
    outcome: str | None = None,
) -> dict[str, Any]:
    disposition = decision.disposition
    final = outcome or disposition.outcome
    automation = (
        decision.automation.log_fields(kept=final not in NOT_KEPT, reason=final)
        if decision.automation is not None
        else {}
    )
    return {
        **automation,
        "message_id": message_id,
        "ses_message_id": ses_message_id,
        "from": message.from_address,
        "subject": message.subject[:200],
        "rules_matched": list(disposition.matched),
        "actions": [
            {
                **action,
                **(
                    {"result": decision.forwards.get(action.get("to", ""))}
                    if action["type"] == "forward"
                    else {}
                ),
            }
            for action in disposition.actions
        ],
        "outcome": final,
        "folder": decision.folder_path,
        "auto_reply": decision.auto_reply_note,
        "evaluation_us": disposition.evaluation_us,
        "created_at": clock.now_iso(),
        **({"test": True} if decision.test else {}),
    }


def record_reject(
    table: Table,
    org_id: str,
    mailbox_id: str,
    decision: Decision,
    *,
    ses_message_id: str,
    received_at: datetime,
    message: ParsedMessage,
) -> None:
    """A rejected message leaves only its log entry (keyed like the message it would have been, so
    a retry writes the same entry)."""
    ulid = source_message_id(received_at, ses_message_id, mailbox_id).partition("_")[2]
    entry = log_entry(decision, message_id=None, ses_message_id=ses_message_id, message=message)
    rule_store.put_log(table, rule_store.log_item(org_id, mailbox_id, ulid, entry, received_at))


def deliver_decided(
    table: Table, incoming: Incoming, decision: Decision, *, envelope_from: str | None
) -> Outcome:
    """Store the copy as the rules decided, with its log entry in the same transaction; then the
    auto-reply, if the message qualifies."""
    org_id, mailbox_id = incoming.org_id, str(incoming.mailbox["id"])
    source_id = incoming.source_id or ""
    message_id = source_message_id(incoming.received_at, source_id, mailbox_id)
    ulid = message_id.partition("_")[2]
    disposition = decision.disposition
    incoming.message_id = message_id
    incoming.labels = disposition.labels(incoming.labels)
    incoming.seen = incoming.seen or disposition.seen or disposition.discard
    incoming.flagged = incoming.flagged or disposition.flagged
    incoming.extra = {**incoming.extra, "rules_applied": list(disposition.matched)}
    default_folder = incoming.folder_key
    if decision.folder_key is not None:
        incoming.folder_key = decision.folder_key
    outcome_note: str | None = None

    def attempt() -> Outcome:
        entry = log_entry(
            decision,
            message_id=message_id,
            ses_message_id=source_id,
            message=incoming.parsed,
            outcome=outcome_note,
        )
        log = rule_store.log_item(org_id, mailbox_id, ulid, entry, incoming.received_at)
        incoming.also = [*folder_check(org_id, mailbox_id, decision), rule_store.log_op(log)]
        if decision.automation is not None:
            incoming.also += decision.automation.operations(ulid, incoming.received_at)
        return deliver(table, incoming)

    # The first attempt, the folder fallback, then the data rounds (re-read, then refuse: each round
    # past DATA_ATTEMPTS refuses at least one of the message's documents).
    for _ in range(2 + inbound_automation.DATA_ATTEMPTS + inbound_automation.MAX_DATA_WRITES):
        try:
            outcome = attempt()
            break
        except Rejected as rejected:
            handled = False
            if "rule_folder" in rejected.roles and outcome_note is None:
                # The folder was deleted after the rule was saved: the message goes where it would
                # have gone without the rule, and the log says why.
                decision.folder_key, decision.folder_path = None, None
                incoming.folder_key = default_folder
                outcome_note = "folder_missing"
                handled = True
            if decision.automation is not None and decision.automation.recover(table, rejected):
                handled = True  # a store_data document changed meanwhile, or a limit: planned again
            if not handled or set(rejected.roles) - {"rule_folder", *rejected.by("data")}:
                raise
    else:
        raise RuntimeError(f"{message_id}: the storing transaction kept failing on its conditions")
    if outcome.stored is Stored.STORED and decision.automation is not None:
        decision.automation.after_stored(table, ulid, incoming.received_at)
    if outcome.stored not in (Stored.STORED, Stored.DUPLICATE):
        entry = log_entry(
            decision,
            message_id=None,
            ses_message_id=source_id,
            message=incoming.parsed,
            outcome=outcome.stored.value,
        )
        rule_store.put_log(table, rule_store.log_item(org_id, mailbox_id, ulid, entry, incoming.received_at))
        return outcome
    if outcome.stored is Stored.STORED and decision.auto_reply is not None and envelope_from:
        from mailroom.services import auto_reply as replies

        result = replies.reply(
            table,
            incoming.mailbox,
            decision.auto_reply,
            incoming.parsed,
            recipient=envelope_from,
            now=clock.utcnow(),
        )
        rule_store.set_log_auto_reply(table, org_id, mailbox_id, ulid, result)
    return outcome


def mark_test(mailbox_ids: Iterable[str], decisions: dict[str, Decision]) -> None:
    """A test message (services/testmail.py) is logged in every mailbox it reaches (``mailbox_ids``:
    its copies), with rules or routes or none: a mailbox without any gets an empty decision
    (delivered as always)."""
    for mailbox_id in mailbox_ids:
        decisions.setdefault(mailbox_id, Decision(Disposition())).test = True

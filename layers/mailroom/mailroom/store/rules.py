"""A mailbox's rules, auto-reply, auto-reply markers and processing log, all in the mailbox's own
partition (``ORG#<org>#MBX#<mbx>``; see keys.py), so the mailbox purge removes them with its mail.

The rule set is one item (``SK RULES``: the ordered rules and a version) and the auto-reply another
(``SK AUTOREPLY``). Inbound reads both in the same BatchGetItem as the mailbox's blocked-sender
keys (``screen``): a mailbox with rules costs no extra request per message. The rules are kept as
one JSON string attribute (``rules_json``), not a list of maps: every inbound message reads them,
and botocore parses a typed node per value (100 rules as maps cost the function about 15 ms per
message to parse; as a string, next to nothing, and the item is smaller, so cheaper to read).
``get_rule_set`` gives ``rules`` as a list; ``screen`` leaves the item as stored, for inbound to
decode only a version it has not compiled yet (``decoded``). Every change is a transaction
conditioned on the version read (so a reorder or an edit never loses a concurrent one) and on the
mailbox still existing (so nothing outlives a deleted mailbox's purge).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom.store import keys
from mailroom.store.blocked_senders import block_sk
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, check, put, run

LOG_RETENTION_DAYS = 30


class MailboxGone(Exception):
    """The mailbox was deleted meanwhile."""


class VersionChanged(Exception):
    """Someone else changed the rules (or the auto-reply) since they were read."""


@dataclass(frozen=True, slots=True)
class Screening:
    """What inbound needs to know about one mailbox before it stores a message there."""

    blocked: bool
    rule_set: Item | None  # as stored: ``rules_json`` not decoded (see ``decoded``)
    auto_reply: Item | None


def _sender_keys(senders: list[str | None]) -> list[str]:
    candidates: dict[str, None] = {}
    for sender in senders:
        if sender and "@" in sender:
            lowered = sender.lower()
            candidates[block_sk(lowered)] = None
            candidates[block_sk("@" + lowered.rpartition("@")[2])] = None
    return list(candidates)


def screen_keys(org_id: str, mailbox_id: str, senders: list[str | None]) -> list[tuple[str, str]]:
    """The keys ``screen`` reads, for a caller that reads them with others in one BatchGetItem."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    return [(pk, sk) for sk in [*_sender_keys(senders), keys.RULESET_SK, keys.AUTO_REPLY_SK]]


def screening_of(
    org_id: str, mailbox_id: str, senders: list[str | None], found: Mapping[tuple[str, str], Item | None]
) -> Screening:
    """The screening from items already read (``found``: every key of ``screen_keys``, present or
    None)."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    return Screening(
        blocked=any(found.get((pk, sk)) is not None for sk in _sender_keys(senders)),
        rule_set=found.get((pk, keys.RULESET_SK)),
        auto_reply=found.get((pk, keys.AUTO_REPLY_SK)),
    )


def screen(table: Table, org_id: str, mailbox_id: str, senders: list[str | None]) -> Screening:
    """Blocked or not, with the rule set and auto-reply: one BatchGetItem (blocked-sender keys of the
    envelope sender and From address, plus the two settings items)."""
    wanted = screen_keys(org_id, mailbox_id, senders)
    read = {(str(item["PK"]), str(item["SK"])): item for item in table.batch_get(wanted)}
    return screening_of(org_id, mailbox_id, senders, {key: read.get(key) for key in wanted})


def _encoded(fields: Item) -> Item:
    encoded = {name: value for name, value in fields.items() if name != "rules"}
    encoded["rules_json"] = json.dumps(fields.get("rules") or [], separators=(",", ":"), ensure_ascii=False)
    return encoded


def decoded(item: Item | None) -> Item | None:
    """A stored rule set with its ``rules`` as a list. Inbound calls it only when the version it
    finds is not compiled already: a warm function decodes a mailbox's rules once per version."""
    if item is None:
        return None
    decoded = {name: value for name, value in item.items() if name != "rules_json"}
    decoded["rules"] = json.loads(str(item.get("rules_json") or "[]"))
    return decoded


def get_rule_set(table: Table, org_id: str, mailbox_id: str) -> Item | None:
    return decoded(table.get(keys.mailbox_pk(org_id, mailbox_id), keys.RULESET_SK))


def get_auto_reply(table: Table, org_id: str, mailbox_id: str) -> Item | None:
    return table.get(keys.mailbox_pk(org_id, mailbox_id), keys.AUTO_REPLY_SK)


def _versioned_put(role: str, item: Item, version: int) -> Op:
    """Put ``item`` with version ``version + 1`` if the stored one still has ``version`` (0: none)."""
    op = put(role, {**item, "version": version + 1})
    body = op.body["Put"]
    if version == 0:
        body["ConditionExpression"] = "attribute_not_exists(PK)"
    else:
        body["ConditionExpression"] = "version = :version"
        body["ExpressionAttributeValues"] = {":version": {"N": str(version)}}
    return op


def _mailbox_exists(org_id: str, mailbox_id: str) -> Op:
    return check("mailbox", keys.org_pk(org_id), keys.mailbox_sk(mailbox_id), "attribute_exists(PK)")


def save(
    table: Table,
    org_id: str,
    mailbox_id: str,
    *,
    rule_set: tuple[Item, int] | None = None,
    auto_reply: tuple[Item, int] | None = None,
) -> None:
    """Write the rule set and/or the auto-reply (each ``(fields, version read)``) in one transaction.
    Raises MailboxGone or VersionChanged; nothing is written then."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    operations = [_mailbox_exists(org_id, mailbox_id)]
    if rule_set is not None:
        fields, version = rule_set
        item = {**_encoded(fields), "PK": pk, "SK": keys.RULESET_SK, "type": "rule_set"}
        operations.append(_versioned_put("rules", item, version))
    if auto_reply is not None:
        fields, version = auto_reply
        item = {**fields, "PK": pk, "SK": keys.AUTO_REPLY_SK, "type": "auto_reply"}
        operations.append(_versioned_put("auto_reply", item, version))
    from mailroom.store.txn import Rejected

    try:
        run(table, operations)
    except Rejected as rejected:
        if "mailbox" in rejected.roles:
            raise MailboxGone(mailbox_id) from rejected
        raise VersionChanged(mailbox_id) from rejected


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple())


def claim_reply(
    table: Table, org_id: str, mailbox_id: str, sender: str, *, interval_days: int, now: datetime
) -> bool:
    """Take the right to answer ``sender`` now: True once per ``interval_days`` per sender. The
    marker expires by TTL; until DynamoDB removes it, its ``ttl`` is compared here, so an expired
    marker that is still there does not hold a reply back."""
    item = {
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.auto_replied_sk(sender),
        "type": "auto_replied",
        "replied_at": now.isoformat(),
        "ttl": _epoch(now + timedelta(days=interval_days)),
    }
    try:
        table.put(
            item,
            condition="attribute_not_exists(PK) OR #ttl <= :now",
            names={"#ttl": "ttl"},
            expression_values={":now": {"N": str(_epoch(now))}},
        )
    except ConditionFailed:
        return False
    return True


def log_item(org_id: str, mailbox_id: str, ulid: str, entry: dict[str, Any], at: datetime) -> Item:
    return {
        **entry,
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.rule_log_sk(ulid),
        "type": "rule_log",
        "ttl": _epoch(at + timedelta(days=LOG_RETENTION_DAYS)),
    }


def log_op(item: Item) -> Op:
    """The log entry as an operation of the transaction that stores the message (no request of its
    own; an overwrite on a retry writes the same entry)."""
    return put("rule_log", item)


def put_log(table: Table, item: Item) -> None:
    table.put(item)


def set_log_auto_reply(table: Table, org_id: str, mailbox_id: str, ulid: str, outcome: str) -> None:
    """What the auto-reply did, once it was tried (after the message and its entry were stored)."""
    table.update(
        keys.mailbox_pk(org_id, mailbox_id),
        keys.rule_log_sk(ulid),
        "SET auto_reply = :outcome",
        condition="attribute_exists(PK)",
        expression_values={":outcome": {"S": outcome}},
    )


def log_page(table: Table, org_id: str, mailbox_id: str, *, per_page: int, cursor: str | None) -> Page:
    """The processing log, newest first."""
    return table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id),
        sk_prefix=keys.RULE_LOG_PREFIX,
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )


def get_log(table: Table, org_id: str, mailbox_id: str, ulid: str) -> Item | None:
    """One entry of the processing log (the stored message's ulid names it)."""
    return table.get(keys.mailbox_pk(org_id, mailbox_id), keys.rule_log_sk(ulid))

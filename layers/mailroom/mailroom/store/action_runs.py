"""Action runs: one ``ACTRUN#<message ulid>#<route>#<action>`` item per asynchronous action of a
message (in the mailbox's partition, so the mailbox purge removes it with the mail; 30 days TTL),
and the outcome written back into the message's processing-log entry.

A worker *claims* a run before it acts: one conditional UpdateItem that succeeds only if no run
exists, its last attempt asked for a retry, it failed after its last retry (``redrivable``: its
message was parked in the dead-letter queue, and a redrive brings it back), or the worker holding
it let its lease run out. So a message delivered twice runs its action once; a run that is done,
skipped or failed for good never runs again. The claim carries a random token; *finishing* is one
transaction conditioned on that token (a worker whose lease was taken over records nothing) that
also updates the log entry's ``automation.actions[index]`` (conditioned on still naming the same
route and action, and on the status read) and, when the action leaves ``pending``, decrements the
entry's ``automation_pending``.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from mailroom.domain import automation_runs as runs
from mailroom.domain.automation_runs import PendingAction
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table, serialize
from mailroom.store.txn import Op, Rejected, run

RUN_RETENTION_DAYS = 30
LOG_ROLE, RUN_ROLE = "log", "run"
_LOG_PK_PARTS = 4  # ORG#<org>#MBX#<mbx>


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple())


def run_key(pending: PendingAction) -> tuple[str, str]:
    return (
        keys.mailbox_pk(pending.org_id, pending.mailbox_id),
        keys.action_run_sk(pending.message_ulid, pending.route_id, pending.action_id),
    )


def log_key(pending: PendingAction) -> tuple[str, str]:
    return keys.mailbox_pk(pending.org_id, pending.mailbox_id), keys.rule_log_sk(pending.message_ulid)


def message_key(pending: PendingAction) -> tuple[str, str]:
    return keys.mailbox_pk(pending.org_id, pending.mailbox_id), keys.message_sk(pending.message_ulid)


def action_key(pending: PendingAction) -> tuple[str, str]:
    return keys.automation_pk(pending.org_id), keys.automation_action_sk(pending.action_id)


def mailbox_key(pending: PendingAction) -> tuple[str, str]:
    return keys.org_pk(pending.org_id), keys.mailbox_sk(pending.mailbox_id)


def keys_of(pending: PendingAction) -> list[tuple[str, str]]:
    """Everything running one action reads, for one BatchGetItem per batch of messages."""
    return [
        run_key(pending),
        log_key(pending),
        message_key(pending),
        action_key(pending),
        mailbox_key(pending),
    ]


def prefetch(table: Table, actions: Sequence[PendingAction]) -> dict[tuple[str, str], Item]:
    """The items of ``keys_of`` every action, by key (absent keys are missing)."""
    wanted = [key for pending in actions for key in keys_of(pending)]
    return {(str(item["PK"]), str(item["SK"])): item for item in table.batch_get(wanted)}


def get_run(table: Table, pending: PendingAction) -> Item | None:
    return table.get(*run_key(pending))


def documents(table: Table, org_id: str, mailbox_id: str, data_keys: Sequence[str]) -> list[Item]:
    """The mailbox data items of ``data_keys`` (one BatchGetItem; absent ones are missing)."""
    pk = keys.mailbox_pk(org_id, mailbox_id)
    return table.batch_get([(pk, keys.mailbox_data_sk(key)) for key in data_keys])


def log_entry_of(pk: str, sk: str) -> tuple[str, str, str] | None:
    """``(org id, mailbox id, ulid)`` of a processing-log entry's keys, or None for other keys."""
    parts = pk.split("#")
    if len(parts) != _LOG_PK_PARTS or parts[0] != "ORG" or parts[2] != "MBX":
        return None
    if not sk.startswith(keys.RULE_LOG_PREFIX):
        return None
    ulid = sk[len(keys.RULE_LOG_PREFIX) :]
    return (parts[1], parts[3], ulid) if ulid else None


# ----------------------------------------------------------------------------- claiming


def claim(
    table: Table, pending: PendingAction, *, token: str, now: datetime, lease_seconds: int
) -> Item | None:
    """Take the run for one attempt (see the module docstring; ``redrivable`` marks a run that failed
    after its last retry): the run as claimed, its
    ``attempts`` counting this one; None when it is not claimable now (read it to learn why)."""
    pk, sk = run_key(pending)
    expiry = _epoch(now + timedelta(days=RUN_RETENTION_DAYS))
    names = {"#st": "status", "#tk": "token", "#ttl": "ttl", "#type": "type"}
    wire = serialize(
        {
            ":running": runs.RUNNING,
            ":retry": runs.RETRY,
            ":failed": runs.FAILED,
            ":yes": True,
            ":token": token,
            ":lease": _epoch(now) + lease_seconds,
            ":now": _epoch(now),
            ":zero": 0,
            ":one": 1,
            ":ttl": expiry,
            ":type": "action_run",
            ":started": now.isoformat(),
            ":org": pending.org_id,
            ":mbx": pending.mailbox_id,
            ":msg": pending.message_ulid,
            ":rte": pending.route_id,
            ":act": pending.action_id,
            ":kind": pending.action_type,
        }
    )
    try:
        return table.update(
            pk,
            sk,
            "SET #st = :running, #tk = :token, lease_until = :lease,"
            " attempts = if_not_exists(attempts, :zero) + :one, #ttl = :ttl, #type = :type,"
            " started_at = :started, org_id = :org, mailbox_id = :mbx,"
            " message_ulid = :msg, route_id = :rte, action_id = :act, action_type = :kind",
            condition="attribute_not_exists(PK) OR #st = :retry OR (#st = :failed AND redrivable = :yes)"
            " OR (#st = :running AND lease_until < :now)",
            names=names,
            expression_values=wire,
        )
    except ConditionFailed:
        return None


# ----------------------------------------------------------------------------- finishing


def _log_update(
    pending: PendingAction, *, seen_status: str, fields: Mapping[str, Any], decrement: bool
) -> Op:
    at = f"#au.#ac[{pending.index}]"
    names = {"#au": "automation", "#ac": "actions", "#st": "status", "#ri": "route_id", "#ai": "action_id"}
    named_values: dict[str, Any] = {":seen": seen_status, ":rte": pending.route_id, ":act": pending.action_id}
    sets, removes = [], []
    for number, (field, value) in enumerate(fields.items()):
        names[f"#f{number}"] = field
        if value is None:
            removes.append(f"{at}.#f{number}")
        else:
            sets.append(f"{at}.#f{number} = :f{number}")
            named_values[f":f{number}"] = value
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    condition = f"attribute_exists(PK) AND {at}.#ri = :rte AND {at}.#ai = :act AND {at}.#st = :seen"
    if decrement:
        expression += " ADD automation_pending :minus"
        condition += " AND automation_pending > :zero"
        named_values |= {":minus": -1, ":zero": 0}
    pk, sk = log_key(pending)
    body = {
        "Key": serialize({"PK": pk, "SK": sk}),
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialize(named_values),
    }
    return Op(LOG_ROLE, {"Update": body})


def _run_update(pending: PendingAction, *, token: str, status: str, fields: Mapping[str, Any]) -> Op:
    names = {"#st": "status", "#tk": "token"}
    named_values: dict[str, Any] = {":status": status, ":token": token}
    sets, removes = ["#st = :status"], ["#tk", "lease_until"]
    for number, (field, value) in enumerate(fields.items()):
        names[f"#f{number}"] = field
        if value is None:
            removes.append(f"#f{number}")
        else:
            sets.append(f"#f{number} = :f{number}")
            named_values[f":f{number}"] = value
    pk, sk = run_key(pending)
    body = {
        "Key": serialize({"PK": pk, "SK": sk}),
        "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
        "ConditionExpression": "#tk = :token",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialize(named_values),
    }
    return Op(RUN_ROLE, {"Update": body})


def finish(
    table: Table,
    pending: PendingAction,
    *,
    token: str,
    status: str,
    seen_log_status: str | None,
    run_fields: Mapping[str, Any],
    log_fields: Mapping[str, Any],
) -> str:
    """Record an attempt's outcome on the run and in the log entry, in one transaction (see the
    module docstring). ``status``: the run's new status; ``seen_log_status``: the log entry's
    status for this action as read (None: the entry or the action is not there: only the run is
    written). Returns ``recorded``, ``run_only`` (the log entry changed or went: the run was
    recorded alone) or ``lost`` (the lease was taken over: nothing written)."""
    run_op = _run_update(pending, token=token, status=status, fields=run_fields)
    operations = [run_op]
    if seen_log_status is not None:
        logged = {"status": status if status in runs.TERMINAL else runs.PENDING, **log_fields}
        decrement = seen_log_status == runs.PENDING and status in runs.TERMINAL
        operations.append(
            _log_update(pending, seen_status=seen_log_status, fields=logged, decrement=decrement)
        )
    try:
        run(table, operations)
    except Rejected as rejected:
        if RUN_ROLE in rejected.roles:
            return "lost"
        try:
            run(table, [run_op])
        except Rejected:
            return "lost"
        return "run_only"
    return "recorded" if len(operations) > 1 else "run_only"


# ----------------------------------------------------------------------------- replies


def claim_reply(
    table: Table,
    org_id: str,
    mailbox_id: str,
    sender: str,
    *,
    run_id: str,
    interval_days: int,
    now: datetime,
) -> bool:
    """Take the right to answer ``sender`` now: the mailbox's ``AUTOREPLIED#`` marker (shared with its
    vacation reply, ``store.rules.claim_reply``: one automatic answer per sender per period), owned
    by ``run_id`` so that the same run's retry (a send that failed after the claim) may still send."""
    item = {
        "PK": keys.mailbox_pk(org_id, mailbox_id),
        "SK": keys.auto_replied_sk(sender),
        "type": "auto_replied",
        "replied_at": now.isoformat(),
        "claimed_by": run_id,
        "ttl": _epoch(now + timedelta(days=interval_days)),
    }
    try:
        table.put(
            item,
            condition="attribute_not_exists(PK) OR #ttl <= :now OR claimed_by = :run",
            names={"#ttl": "ttl"},
            expression_values=serialize({":now": _epoch(now), ":run": run_id}),
        )
    except ConditionFailed:
        return False
    return True

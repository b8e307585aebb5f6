"""Task configs and their runs (keys in store/keys.py, "The automation model").

A task lives in its organization's automation partition; the partition's HEAD item counts tasks
(``task_count``, the 100-task limit held in the transaction that adds one: a conditional ADD on that
attribute only, since the HEAD's other counters and ``version`` belong to rules, actions and routes).
A run is one item in the task's own runs partition (newest last by ULID), expiring with its TTL.

The lease that keeps two runs of one task apart is two attributes of the task item
(``lease_run``, ``lease_until``): taken conditionally when free or expired, given back by the run
that holds it. A scheduled firing also records its scheduled time (``last_scheduled_time``) in the
same write, so Scheduler's at-least-once delivery of one firing runs once.
"""

from __future__ import annotations

from typing import Any

from mailroom.domain.tasks import MAX_TASKS
from mailroom.store import keys, txn
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Op, Update


def task_key(org_id: str, task_id: str) -> tuple[str, str]:
    return keys.automation_pk(org_id), keys.automation_task_sk(task_id)


def get(table: Table, org_id: str, task_id: str) -> Item | None:
    return table.get(*task_key(org_id, task_id))


def get_action(table: Table, org_id: str, action_id: str) -> Item | None:
    """An action item (written by the automation API), read by key."""
    return table.get(keys.automation_pk(org_id), keys.automation_action_sk(action_id))


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.automation_pk(org_id),
        sk_prefix=keys.AUTOMATION_TASK_PREFIX,
        per_page=per_page,
        cursor=cursor,
    )


def head(table: Table, org_id: str) -> Item:
    return table.get(keys.automation_pk(org_id), keys.AUTOMATION_HEAD_SK) or {}


def _count_change(org_id: str, delta: int) -> Op:
    change = Update(keys.automation_pk(org_id), keys.AUTOMATION_HEAD_SK, upsert=True).add(task_count=delta)
    if delta > 0:
        change.at_most("task_count", MAX_TASKS - delta)
    return change.op("head")


def create(table: Table, task: Item) -> None:
    """Write a new task and count it. ``txn.Rejected`` with role ``head``: the limit is reached."""
    pk, sk = task_key(task["org_id"], task["id"])
    txn.run(table, [txn.put_new("task", {"PK": pk, "SK": sk, **task}), _count_change(task["org_id"], 1)])


def replace(table: Table, task: Item, *, expected_version: int) -> None:
    """Write the task's new state if it is still at ``expected_version`` (ConditionFailed if not);
    the lease and the last firing stay as they are."""
    pk, sk = task_key(task["org_id"], task["id"])
    change = Update(pk, sk).equals("version", expected_version)
    change.set(**{k: v for k, v in task.items() if k not in _RUN_STATE})
    change.apply(table)


_RUN_STATE = frozenset({"lease_run", "lease_until", "last_scheduled_time", "last_run"})


def delete(table: Table, org_id: str, task_id: str) -> None:
    """Delete the task and uncount it. ``txn.Rejected`` (role ``task``): it was gone already."""
    pk, sk = task_key(org_id, task_id)
    txn.run(table, [txn.delete("task", pk, sk, condition="attribute_exists(PK)"), _count_change(org_id, -1)])


def take_lease(
    table: Table, org_id: str, task_id: str, *, run_id: str, now: int, until: int, scheduled_time: str | None
) -> Item | None:
    """Hold the task for ``run_id`` until ``until`` (epoch seconds); the task as it is now, or None
    when another run holds an unexpired lease, the task is gone, or (``scheduled_time``) this firing
    already ran."""
    pk, sk = task_key(org_id, task_id)
    change = Update(pk, sk).set(lease_run=run_id, lease_until=until)
    lease = change.name("lease_until")
    change.when(f"(attribute_not_exists({lease}) OR {lease} <= {change.value(now)})")
    if scheduled_time is not None:
        last = change.name("last_scheduled_time")
        change.set(last_scheduled_time=scheduled_time)
        change.when(f"(attribute_not_exists({last}) OR {last} <> {change.value(scheduled_time)})")
    try:
        return change.apply(table)
    except ConditionFailed:
        return None


def release_lease(table: Table, org_id: str, task_id: str, *, run_id: str, last_run: dict[str, Any]) -> None:
    """Give the lease back and note the run on the task; a lease taken over meanwhile (it expired)
    or a task deleted meanwhile is left alone."""
    pk, sk = task_key(org_id, task_id)
    change = Update(pk, sk).remove("lease_run", "lease_until").set(last_run=last_run)
    change.equals("lease_run", run_id)
    try:
        change.apply(table)
    except ConditionFailed:
        return


# --- runs ---------------------------------------------------------------------------------------------


def run_key(org_id: str, task_id: str, run_id: str) -> tuple[str, str]:
    return keys.task_runs_pk(org_id, task_id), run_id.removeprefix("run_")


def put_run(table: Table, run: Item) -> None:
    pk, sk = run_key(run["org_id"], run["task_id"], run["id"])
    table.put({"PK": pk, "SK": sk, **run}, condition="attribute_not_exists(PK)")


def start_run(table: Table, org_id: str, task_id: str, run_id: str, fields: dict[str, Any]) -> Item | None:
    """A queued run becomes running (conditional: a redelivered invocation of a run that already
    started finds it started, and None tells it so)."""
    pk, sk = run_key(org_id, task_id, run_id)
    change = Update(pk, sk).set(**fields).equals("status", "queued")
    try:
        return change.apply(table)
    except ConditionFailed:
        return None


def abandon_run(table: Table, org_id: str, task_id: str, run_id: str, fields: dict[str, Any]) -> None:
    """Close a run whose runner died holding the lease (it is still ``running``); any other state,
    or no such run, is left alone."""
    pk, sk = run_key(org_id, task_id, run_id)
    try:
        Update(pk, sk).set(**fields).equals("status", "running").apply(table)
    except ConditionFailed:
        return


def finish_run(table: Table, org_id: str, task_id: str, run_id: str, fields: dict[str, Any]) -> None:
    pk, sk = run_key(org_id, task_id, run_id)
    Update(pk, sk).set(**fields).apply(table)


def get_run(table: Table, org_id: str, task_id: str, run_id: str) -> Item | None:
    return table.get(*run_key(org_id, task_id, run_id))


def list_runs(table: Table, org_id: str, task_id: str, *, per_page: int, cursor: str | None) -> Page:
    return table.query_page(
        partition=keys.task_runs_pk(org_id, task_id), per_page=per_page, cursor=cursor, newest_first=True
    )

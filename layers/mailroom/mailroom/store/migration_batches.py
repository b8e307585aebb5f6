"""Bulk migration batches (keys.py): the batch item, its jobs (ordinary migration jobs, see
store/migrations.py) and the sweep index of batches that may still have work to schedule.

Invariants are conditions:

* a batch's job waits (``pending`` without ``execution_arn``) holding no slot; starting it sets
  its ``execution_arn`` and takes the organization's and the platform's slot in one transaction
  conditional on it still waiting, so a job starts once however many ticks race;
* a waiting job is cancelled or a settled one re-queued only if it is as it was read (status and
  attempt), so a tick and a user's action never both win;
* the batch item's scheduling state (status, counts, pause) is written conditionally on the
  ``version`` that was read, so an older tick never overwrites a newer one;
* the batch, its idempotency claim and the organization's job count are written in one
  transaction, before any job exists (``creating``), so a start that dies half-way leaves a batch
  the sweep can find and undo instead of jobs nobody knows about.

Membership is the batch's ``job_ids`` (row order), read back with consistent BatchGetItem: the
scheduler's decisions need each job's latest state, which an index (eventually consistent) does
not promise right after a job changed.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from mailroom.domain import migrations as rules
from mailroom.store import keys
from mailroom.store import migrations as jobs_store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, values
from mailroom.store.txn import MAX_OPERATIONS, Op, Rejected, Update, delete, put, put_new, run

BATCH_PREFIX = "MIGBATCH#"
KEY_CLAIM_PREFIX = "MIGBATCH_KEY#"
PURGE_PREFIX = "MIGBATCH_PURGE#"
SWEEP_SHARDS = 8
BATCH_TYPE = "migration_batch"
PURGE_TYPE = "migration_batch_purge"
_TERMINAL = sorted(rules.TERMINAL)


def batch_sk(batch_id: str) -> str:
    return f"{BATCH_PREFIX}{batch_id}"


def key_claim_sk(key_hash: str) -> str:
    return f"{KEY_CLAIM_PREFIX}{key_hash}"


def purge_sk(batch_id: str) -> str:
    return f"{PURGE_PREFIX}{batch_id}"


def sweep_pk(shard: int) -> str:
    return f"MIGBATCH_ACTIVE#{shard}"


def _shard(batch_id: str) -> int:
    return zlib.crc32(batch_id.encode()) % SWEEP_SHARDS


def _sweep_keys(batch_id: str, org_id: str, at: str) -> dict[str, str]:
    # Least recently ticked first: a sweep that runs out of time leaves the freshest for next time.
    return {"GSI2PK": sweep_pk(_shard(batch_id)), "GSI2SK": f"{at}#{org_id}#{batch_id}"}


def is_waiting(job: Mapping[str, Any]) -> bool:
    """Created by a batch and not handed to the state machine yet (holds no slot)."""
    return job.get("status") == rules.PENDING and not job.get("execution_arn")


# ----------------------------------------------------------------------------- reading


def get(table: Table, org_id: str, batch_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), batch_sk(batch_id))


def get_key_claim(table: Table, org_id: str, key_hash: str) -> Item | None:
    return table.get(keys.org_pk(org_id), key_claim_sk(key_hash))


def jobs(table: Table, batch: Item) -> list[Item]:
    """The batch's jobs that still exist, in row order (consistent reads)."""
    org_id = batch["org_id"]
    found = table.batch_get([(keys.org_pk(org_id), keys.migration_sk(j)) for j in batch.get("job_ids", [])])
    return sorted(found, key=lambda job: int(job.get("row", 0)))


def list_page(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    """The organization's batches, newest first (ids are ULIDs)."""
    return table.query_page(
        partition=keys.org_pk(org_id),
        sk_prefix=BATCH_PREFIX,
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )


def batch_count(table: Table, org_id: str) -> int:
    item = table.get(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK)
    return max(0, int((item or {}).get("batch_count", 0)))


def running_jobs(table: Table, org_id: str) -> list[Item]:
    """The organization's jobs holding a platform slot right now (single and bulk): the capacity
    item names its holders (at most the platform's capacity), read back under this organization's
    key, so no other organization's job can be among them."""
    item = table.get(keys.MIGRATION_CAPACITY_PK, keys.MIGRATION_CAPACITY_SK)
    holders = sorted((item or {}).get("holders") or [])
    if not holders:
        return []
    found = table.batch_get([(keys.org_pk(org_id), keys.migration_sk(h)) for h in holders])
    return [job for job in found if job.get("status") in rules.ACTIVE]


def swept(table: Table, shard: int, *, before: str, per_page: int = 50, cursor: str | None = None) -> Page:
    """Batches (and purges of deleted ones) with work left, every organization, last touched
    before ``before`` (ISO time), least recently touched first."""
    return table.query_page(
        partition=sweep_pk(shard),
        index="GSI2",
        per_page=per_page,
        cursor=cursor,
        sk_between=("0", before),
    )


# ----------------------------------------------------------------------------- creating


def batch_item(batch: Item) -> Item:
    return {
        **batch,
        "PK": keys.org_pk(batch["org_id"]),
        "SK": batch_sk(batch["id"]),
        "type": BATCH_TYPE,
        **_sweep_keys(batch["id"], batch["org_id"], str(batch["created_at"])),
    }


def job_item(job: Item) -> Item:
    return jobs_store.job_item(job)


def create(table: Table, batch: Item, *, key_claim: Item | None) -> None:
    """Write the batch (``creating``, in the sweep index) with its idempotency claim, counting its
    jobs in the organization's job count and one more batch. ``Rejected`` role ``key``: the claim
    exists (another start with the same idempotency_key)."""
    org_id = batch["org_id"]
    operations = [put_new("batch", batch_item(batch))]
    if key_claim is not None:
        operations.append(
            put_new(
                "key",
                {
                    **key_claim,
                    "PK": keys.org_pk(org_id),
                    "SK": key_claim_sk(str(key_claim["key_hash"])),
                    "type": "migration_batch_key",
                },
            )
        )
    counters = Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True)
    counters.add(count=len(batch["job_ids"]), batch_count=1)
    operations.append(counters.op("org"))
    run(table, operations)


def write_jobs(table: Table, job_items: Sequence[Item], secret_items: Sequence[Item]) -> None:
    """The batch's waiting jobs and their sealed passwords, BatchWriteItem in groups of 25."""
    jobs_store.batch_write(table, puts=[*job_items, *secret_items], deletes=[])


def created(table: Table, org_id: str, batch_id: str) -> None:
    """Every job is written: the batch may be scheduled."""
    Update(keys.org_pk(org_id), batch_sk(batch_id)).remove("creating").apply(table)


def abort(table: Table, batch: Item) -> None:
    """Undo a start that did not finish (``creating``): its jobs, their secrets, the claim, the
    counts and the batch. No job of it ever started (only a created batch is scheduled)."""
    org_id, batch_id = batch["org_id"], batch["id"]
    job_ids = list(batch.get("job_ids", []))
    doomed = [(keys.org_pk(org_id), keys.migration_sk(j)) for j in job_ids]
    doomed += [(keys.migration_pk(org_id, j), keys.MIGRATION_SECRET_SK) for j in job_ids]
    jobs_store.batch_write(table, puts=[], deletes=doomed)
    operations = [
        delete("batch", keys.org_pk(org_id), batch_sk(batch_id), condition="attribute_exists(creating)"),
        Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True)
        .add(count=-len(job_ids), batch_count=-1)
        .op("org"),
    ]
    if batch.get("key_hash"):
        operations.append(delete("key", keys.org_pk(org_id), key_claim_sk(str(batch["key_hash"]))))
    run(table, operations)


# ----------------------------------------------------------------------------- jobs


def start_waiting(
    table: Table, job: Item, *, execution_arn: str, now: str, org_limit: int, capacity: int
) -> None:
    """Hand a waiting job to the state machine: point it at its execution and take both slots, if
    it still waits in its attempt. ``Rejected`` roles: ``job`` (started, cancelled or re-queued
    meanwhile), ``org`` (the organization's concurrency), ``capacity`` (the platform's)."""
    org_id, job_id = job["org_id"], job["id"]
    update = Update(keys.org_pk(org_id), keys.migration_sk(job_id))
    update.equals("status", rules.PENDING).equals("attempt", int(job.get("attempt", 1)))
    update.equals("execution_arn", None)
    update.set(execution_arn=execution_arn, executions=1, started_at=now, updated_at=now)
    # The single-migration slots, as store.migrations.start takes them; new_job=False: the job was
    # already counted in the organization's job count when the batch was created.
    slots = jobs_store.take_slots(org_id, job_id, org_limit=org_limit, capacity=capacity, new_job=False)
    run(table, [update.op("job"), *slots])


def cancel_waiting(table: Table, job: Item, *, now: str, message: str) -> bool:
    """Cancel a job that never started (it holds no slot). False if it is no longer waiting."""
    org_id = job["org_id"]
    update = Update(keys.org_pk(org_id), keys.migration_sk(job["id"]))
    update.equals("status", rules.PENDING).equals("attempt", int(job.get("attempt", 1)))
    update.equals("execution_arn", None)
    update.set(
        status=rules.CANCELLED,
        GSI2PK=keys.migrations_by_status_pk(org_id, rules.CANCELLED),
        finished_at=now,
        updated_at=now,
        error_message=message,
    )
    try:
        update.apply(table)
    except ConditionFailed:
        return False
    return True


def requeue(table: Table, job: Item, *, now: str) -> bool:
    """A failed or cancelled job waits again in its next attempt, counters at zero (what earlier
    attempts imported is recognised by the plan step and not fetched again). False if it is not
    as it was read."""
    org_id = job["org_id"]
    attempt = int(job.get("attempt", 1))
    update = Update(keys.org_pk(org_id), keys.migration_sk(job["id"]))
    update.equals("status", job["status"]).equals("attempt", attempt)
    update.set(
        status=rules.PENDING,
        GSI2PK=keys.migrations_by_status_pk(org_id, rules.PENDING),
        attempt=attempt + 1,
        **jobs_store.reset_counters(),
        batches_total=0,
        batches_done=0,
        executions=0,
        # None removes: a waiting job has no execution, error or times of its own yet.
        execution_arn=None,
        error_code=None,
        error_reason=None,
        error_message=None,
        started_at=None,
        finished_at=None,
        updated_at=now,
    )
    try:
        update.apply(table)
    except ConditionFailed:
        return False
    return True


def replace_secret(table: Table, job: Item, *, ciphertext: bytes, ttl: int) -> None:
    """A new sealed source password for a failed job, if it is still failed in its attempt.
    ``Rejected`` role ``job`` otherwise."""
    org_id, job_id = job["org_id"], job["id"]
    check = Update(keys.org_pk(org_id), keys.migration_sk(job_id))
    check.equals("status", rules.FAILED).equals("attempt", int(job.get("attempt", 1)))
    run(table, [check.op("job"), put("secret", jobs_store.secret_item(org_id, job_id, ciphertext, ttl))])


# ----------------------------------------------------------------------------- batch state


def save_state(
    table: Table,
    batch: Item,
    *,
    fields: Mapping[str, Any],
    swept: bool,
    now: str,
    flags: Mapping[str, Any] | None = None,
) -> bool:
    """Write the batch's scheduling state (and the user's ``flags``: cancelled, paused, ...) if its
    ``version`` is still the one read; in the sweep index while ``swept``. False if it changed
    meanwhile (read it again) or is gone."""
    update = Update(keys.org_pk(batch["org_id"]), batch_sk(batch["id"]))
    update.equals("version", int(batch.get("version", 0)))
    update.set(**fields, **(flags or {}), updated_at=now)
    if swept:
        update.set(**_sweep_keys(batch["id"], batch["org_id"], now))
    else:
        update.remove("GSI2PK", "GSI2SK")
    update.add(version=1)
    try:
        update.apply(table)
    except ConditionFailed:
        return False
    return True


def remove(table: Table, batch: Item, job_items: Sequence[Item], *, now: str) -> None:
    """Delete a settled batch: its jobs (each only if not active, with its sealed password), the
    organization's counts, the batch and its idempotency claim, in transactions of at most 100
    operations, jobs first (a DELETE that fails half-way can be sent again). The jobs' working
    partitions are left to ``purge_partitions``: a purge item in the sweep index names them.
    ``Rejected`` roles ``job:<id>`` (it became active: retried through the single endpoint) or
    ``batch`` (the batch changed meanwhile)."""
    org_id, batch_id = batch["org_id"], batch["id"]
    per_transaction = (MAX_OPERATIONS - 1) // 2
    for start in range(0, len(job_items), per_transaction):
        chunk = job_items[start : start + per_transaction]
        operations: list[Op] = []
        for job in chunk:
            operations.append(_delete_settled_job(org_id, job["id"]))
            operations.append(
                delete("secret", keys.migration_pk(org_id, job["id"]), keys.MIGRATION_SECRET_SK)
            )
        counters = Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True).add(count=-len(chunk))
        operations.append(counters.op("org"))
        run(table, operations)
    unchanged = Op(
        "batch",
        {
            "Delete": {
                "Key": {"PK": {"S": keys.org_pk(org_id)}, "SK": {"S": batch_sk(batch_id)}},
                "ConditionExpression": "#version = :version",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": values(version=int(batch.get("version", 0))),
            }
        },
    )
    final = [
        unchanged,
        Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True).add(batch_count=-1).op("org"),
    ]
    if batch.get("key_hash"):
        final.append(delete("key", keys.org_pk(org_id), key_claim_sk(str(batch["key_hash"]))))
    job_ids = [job["id"] for job in job_items]
    if job_ids:
        purge = {
            "PK": keys.org_pk(org_id),
            "SK": purge_sk(batch_id),
            "type": PURGE_TYPE,
            "org_id": org_id,
            "batch_id": batch_id,
            "job_ids": job_ids,
            **_sweep_keys(batch_id, org_id, now),
        }
        final.append(put("purge", purge))
    run(table, final)


def _delete_settled_job(org_id: str, job_id: str) -> Op:
    names = {"#status": "status"}
    placeholders = {f":s{i}": {"S": s} for i, s in enumerate(_TERMINAL)}
    return Op(
        f"job:{job_id}",
        {
            "Delete": {
                "Key": {"PK": {"S": keys.org_pk(org_id)}, "SK": {"S": keys.migration_sk(job_id)}},
                "ConditionExpression": f"#status IN ({', '.join(placeholders)})",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": placeholders,
            }
        },
    )


def purge_partitions(table: Table, purge: Item, *, deadline: float) -> bool:
    """Delete the working partitions of a deleted batch's jobs until done or ``deadline``
    (monotonic); True when every one is gone (and the purge item with them)."""
    org_id = purge["org_id"]
    left = list(purge.get("job_ids", []))
    while left and time.monotonic() < deadline:
        if not jobs_store.delete_partition(table, org_id, left[0], deadline=deadline):
            break
        left.pop(0)
    key = (keys.org_pk(org_id), purge_sk(str(purge["batch_id"])))
    if not left:
        table.delete(*key)
        return True
    Update(*key).set(job_ids=left).apply(table)
    return False


def rejected_jobs(rejected: Rejected) -> list[str]:
    return [role.split(":", 1)[1] for role in rejected.by("job:")]

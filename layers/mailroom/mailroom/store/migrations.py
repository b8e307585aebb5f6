"""Migration jobs, their working partition, and the counters that bound how many run (keys.py).

Invariants are conditions of transactions:

* starting (or retrying) a job takes one of the organization's slots (``active < org limit``) and
  one of the platform's (``active < capacity``) in the transaction that writes the job;
* every transition to a terminal status is conditional on the job being active in the expected
  attempt, and gives both slots back in the same transaction, so a slot is released exactly once
  however many steps, retries and cancels race;
* a batch is counted once: its status flips from ``pending`` to ``done`` in the transaction that
  adds its tallies to the folder and the job (conditional on the job's attempt, so a straggler of
  a previous attempt adds nothing).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.domain import migrations as rules
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table, deserialize, serialize, values
from mailroom.store.txn import Op, Rejected, Update, delete, put, put_new, run

BATCH_WRITE_MAX = 25
WORKING_TTL_SECONDS = 60 * 24 * 3600  # batches and imported sets outlive any attempt by far
_ACTIVE = sorted(rules.ACTIVE)
_COUNTERS = (
    "total_messages",
    "imported_messages",
    "failed_messages",
    "skipped_duplicates",
    "transferred_messages",  # handled while processing in this attempt: the throughput's messages
    "transferred_bytes",
)


# ----------------------------------------------------------------------------- items


def job_item(job: Item) -> Item:
    org_id, job_id = job["org_id"], job["id"]
    return {
        **job,
        "PK": keys.org_pk(org_id),
        "SK": keys.migration_sk(job_id),
        "type": "migration",
        "GSI2PK": keys.migrations_by_status_pk(org_id, job["status"]),
        "GSI2SK": job_id,
        "GSI3PK": keys.migrations_by_mailbox_pk(org_id, job["mailbox_id"]),
        "GSI3SK": job_id,
    }


def get(table: Table, org_id: str, job_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.migration_sk(job_id))


def slots(table: Table, org_id: str) -> Item | None:
    return table.get(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK)


def throughput(table: Table) -> Item | None:
    """The sums of every completed job's record (keys.py's throughput item), None before the first."""
    return table.get(keys.MIGRATION_THROUGHPUT_PK, keys.MIGRATION_THROUGHPUT_SK, consistent=False)


def _record_throughput(record: Mapping[str, int], now: str) -> Op:
    update = Update(keys.MIGRATION_THROUGHPUT_PK, keys.MIGRATION_THROUGHPUT_SK, upsert=True)
    update.add(jobs=1, **{name: int(value) for name, value in record.items()}).set(updated_at=now)
    return update.op("throughput")


def capacity_in_use(table: Table) -> int:
    item = table.get(keys.MIGRATION_CAPACITY_PK, keys.MIGRATION_CAPACITY_SK)
    return int((item or {}).get("active", 0))


def list_page(
    table: Table,
    org_id: str,
    *,
    per_page: int,
    cursor: str | None,
    status: str | None = None,
    mailbox_id: str | None = None,
) -> Page:
    """Newest first. One filter is an index (status: GSI2, mailbox: GSI3); both: the mailbox's
    index with the status as a filter."""
    if mailbox_id:
        filtered = None
        if status:
            filtered = ("#status = :status", {"#status": "status"}, values(status=status))
        return table.query_page(
            partition=keys.migrations_by_mailbox_pk(org_id, mailbox_id),
            index="GSI3",
            per_page=per_page,
            cursor=cursor,
            newest_first=True,
            filter_expression=filtered,
        )
    if status:
        return table.query_page(
            partition=keys.migrations_by_status_pk(org_id, status),
            index="GSI2",
            per_page=per_page,
            cursor=cursor,
            newest_first=True,
        )
    return table.query_page(
        partition=keys.org_pk(org_id),
        sk_prefix=keys.MIGRATION_PREFIX,
        per_page=per_page,
        cursor=cursor,
        newest_first=True,
    )


# ----------------------------------------------------------------------------- slots


def take_slots(org_id: str, job_id: str, *, org_limit: int, capacity: int, new_job: bool) -> list[Op]:
    org_slots = Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True)
    org_slots.add(active=1, count=1 if new_job else 0).at_most("active", org_limit - 1)
    platform = Update(keys.MIGRATION_CAPACITY_PK, keys.MIGRATION_CAPACITY_SK, upsert=True)
    platform.add(active=1).at_most("active", capacity - 1)
    # Which jobs hold platform slots: an operator can check the counter against them.
    platform.add_to_set(holders={job_id})
    return [org_slots.op("org"), platform.op("capacity")]


def _release_slots(org_id: str, job_id: str) -> list[Op]:
    org_slots = Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True).add(active=-1)
    platform = Update(keys.MIGRATION_CAPACITY_PK, keys.MIGRATION_CAPACITY_SK, upsert=True).add(active=-1)
    platform.remove_from_set(holders={job_id})
    return [org_slots.op("org"), platform.op("capacity")]


def secret_item(org_id: str, job_id: str, ciphertext: bytes, ttl: int) -> Item:
    return {
        "PK": keys.migration_pk(org_id, job_id),
        "SK": keys.MIGRATION_SECRET_SK,
        "type": "migration_secret",
        "ciphertext": ciphertext,
        "ttl": ttl,
    }


def start(
    table: Table,
    job: Item,
    *,
    ciphertext: bytes,
    secret_ttl: int,
    org_limit: int,
    capacity: int,
) -> None:
    """Write a new job with its sealed source password, taking both slots. ``Rejected`` roles:
    ``org`` (the organization's limit), ``capacity`` (the platform's), ``job`` (id reused)."""
    org_id, job_id = job["org_id"], job["id"]
    run(
        table,
        [
            put_new("job", job_item(job)),
            *take_slots(org_id, job_id, org_limit=org_limit, capacity=capacity, new_job=True),
            put("secret", secret_item(org_id, job_id, ciphertext, secret_ttl)),
        ],
    )


def restart(
    table: Table,
    job: Item,
    fields: Mapping[str, Any],
    *,
    ciphertext: bytes | None,
    secret_ttl: int,
    org_limit: int,
    capacity: int,
) -> None:
    """Put a failed or cancelled job back to ``pending`` in its next attempt, counters at zero,
    taking both slots again. ``Rejected`` roles: ``job`` (it is not as it was read: another retry
    won, or it is not retryable), ``org``, ``capacity``, ``secret`` (none stored and none given)."""
    org_id, job_id = job["org_id"], job["id"]
    update = Update(keys.org_pk(org_id), keys.migration_sk(job_id))
    update.equals("status", job["status"]).equals("attempt", int(job.get("attempt", 1)))
    update.set(
        **fields,
        GSI2PK=keys.migrations_by_status_pk(org_id, str(fields["status"])),
    )
    operations = [
        update.op("job"),
        *take_slots(org_id, job_id, org_limit=org_limit, capacity=capacity, new_job=False),
    ]
    if ciphertext is not None:
        operations.append(put("secret", secret_item(org_id, job_id, ciphertext, secret_ttl)))
    else:
        secret = Update(keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK).set(ttl=secret_ttl)
        operations.append(secret.op("secret"))
    run(table, operations)


def advance(
    table: Table,
    org_id: str,
    job_id: str,
    *,
    attempt: int,
    from_statuses: Iterable[str],
    fields: Mapping[str, Any],
) -> Item:
    """Set fields of an active job if it is in one of ``from_statuses`` in ``attempt`` (a status
    change moves its index entry too). ConditionFailed otherwise. Returns the job as updated."""
    update = Update(keys.org_pk(org_id), keys.migration_sk(job_id))
    update.equals("attempt", attempt)
    allowed = list(from_statuses)
    ref = update.name("status")
    update.when(f"{ref} IN ({', '.join(update.value(s) for s in allowed)})")
    changes = dict(fields)
    if "status" in changes:
        changes["GSI2PK"] = keys.migrations_by_status_pk(org_id, str(changes["status"]))
    update.set(**changes)
    return update.apply(table)


def finish(
    table: Table,
    job: Item,
    *,
    status: str,
    fields: Mapping[str, Any],
    attempt: int | None = None,
    event: Item | None = None,
    remove_secret: bool,
    throughput: Mapping[str, int] | None = None,
) -> bool:
    """End an active job: terminal ``status`` and ``fields``, both slots released, the event
    written, the sealed password removed (``remove_secret``), the job's ``throughput`` record
    (messages, bytes, transfer_ms, overhead_ms) added to the deployment's sums, all in one
    transaction conditional on the job being active (in ``attempt``, when given), so a job counts
    once. False if it was not (someone else ended it first: nothing changed)."""
    if status not in rules.TERMINAL:
        raise ValueError(f"{status} is not a terminal status")
    org_id, job_id = job["org_id"], job["id"]
    update = Update(keys.org_pk(org_id), keys.migration_sk(job_id))
    ref = update.name("status")
    update.when(f"{ref} IN ({', '.join(update.value(s) for s in _ACTIVE)})")
    if attempt is not None:
        update.equals("attempt", attempt)
    update.set(**fields, status=status, GSI2PK=keys.migrations_by_status_pk(org_id, status))
    operations = [update.op("job"), *_release_slots(org_id, job_id)]
    if event is not None:
        operations.append(put_new("event", event))
    if remove_secret:
        operations.append(delete("secret", keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK))
    if throughput is not None:
        operations.append(_record_throughput(throughput, str(fields.get("updated_at") or _now_iso())))
    try:
        run(table, operations)
    except Rejected as rejected:
        if "job" in rejected.roles:
            return False
        raise
    return True


def set_execution(
    table: Table, org_id: str, job_id: str, *, attempt: int, arn: str, previous: str | None
) -> bool:
    """Point an active job at its new execution (continue-as-new), if it still points at
    ``previous``. False if the job moved on (cancelled, retried, or already handed over)."""
    update = Update(keys.org_pk(org_id), keys.migration_sk(job_id))
    update.equals("attempt", attempt).equals("execution_arn", previous)
    ref = update.name("status")
    update.when(f"{ref} IN ({', '.join(update.value(s) for s in _ACTIVE)})")
    update.set(execution_arn=arn, updated_at=_now_iso())
    update.add(executions=1)
    try:
        update.apply(table)
    except ConditionFailed:
        return False
    return True


def remove(table: Table, job: Item) -> None:
    """Delete a job that is not active (its partition is deleted separately, see delete_partition).
    ``Rejected`` role ``job`` when it became active meanwhile (retried) or is gone."""
    org_id, job_id = job["org_id"], job["id"]
    terminal = sorted(rules.TERMINAL)
    names = {"#status": "status"}
    placeholders = {f"s{i}": s for i, s in enumerate(terminal)}
    condition = f"#status IN ({', '.join(':' + k for k in placeholders)})"
    operations = [
        Op(
            "job",
            {
                "Delete": {
                    "Key": serialize({"PK": keys.org_pk(org_id), "SK": keys.migration_sk(job_id)}),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values(**placeholders),
                }
            },
        ),
        Update(keys.org_pk(org_id), keys.MIGRATION_SLOTS_SK, upsert=True).add(count=-1).op("org"),
        delete("secret", keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK),
    ]
    run(table, operations)


# ----------------------------------------------------------------------------- secret


def get_secret(table: Table, org_id: str, job_id: str) -> bytes | None:
    return _ciphertext(table.get(keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK))


def _ciphertext(item: Item | None) -> bytes | None:
    if item is None or int(item.get("ttl", 0)) < int(time.time()):
        return None  # TTL deletion is lazy: an expired secret is gone already
    return bytes(item["ciphertext"])


@dataclass(frozen=True, slots=True)
class BatchStart:
    """What an import batch reads before it starts (``None``: not there)."""

    job: Item | None
    batch: Item | None
    secret: bytes | None


def batch_start(table: Table, org_id: str, job_id: str, attempt: int, seq: int) -> BatchStart:
    """The job, the batch and the sealed source password in one consistent BatchGetItem (three
    GetItems before; every import batch starts with them)."""
    job_key = (keys.org_pk(org_id), keys.migration_sk(job_id))
    batch_key = (keys.migration_pk(org_id, job_id), keys.migration_batch_sk(attempt, seq))
    secret_key = (keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK)
    found = {(item["PK"], item["SK"]): item for item in table.batch_get([job_key, batch_key, secret_key])}
    return BatchStart(found.get(job_key), found.get(batch_key), _ciphertext(found.get(secret_key)))


def keep_secret_until(table: Table, org_id: str, job_id: str, ttl: int) -> None:
    """Move the sealed password's expiry (no-op when there is none)."""
    with contextlib.suppress(ConditionFailed):
        Update(keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK).set(ttl=ttl).apply(table)


def delete_secret(table: Table, org_id: str, job_id: str) -> None:
    table.delete(keys.migration_pk(org_id, job_id), keys.MIGRATION_SECRET_SK)


# ----------------------------------------------------------------------------- folders and batches


def folders(table: Table, org_id: str, job_id: str) -> list[Item]:
    """Every folder item of the job, in plan order."""
    return _all(table, keys.migration_pk(org_id, job_id), "FOLDER#")


def _all(table: Table, partition: str, prefix: str) -> list[Item]:
    items: list[Item] = []
    cursor = None
    while True:
        page = table.query_page(partition=partition, sk_prefix=prefix, per_page=500, cursor=cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def folder_item(org_id: str, job_id: str, seq: int, folder: Item) -> Item:
    return {
        **folder,
        "PK": keys.migration_pk(org_id, job_id),
        "SK": keys.migration_folder_sk(seq),
        "type": "migration_folder",
        "seq": seq,
    }


def batch_item(org_id: str, job_id: str, attempt: int, seq: int, batch: Item, *, ttl: int) -> Item:
    return {
        **batch,
        "PK": keys.migration_pk(org_id, job_id),
        "SK": keys.migration_batch_sk(attempt, seq),
        "type": "migration_batch",
        "attempt": attempt,
        "seq": seq,
        "status": "pending",
        "ttl": ttl,
    }


def write_plan(
    table: Table, org_id: str, job_id: str, *, folder_items: Sequence[Item], batch_items: Sequence[Item]
) -> None:
    """Replace the job's folder items with ``folder_items`` and add ``batch_items``."""
    stale = {(f["PK"], f["SK"]) for f in folders(table, org_id, job_id)}
    stale -= {(f["PK"], f["SK"]) for f in folder_items}
    batch_write(table, puts=[*folder_items, *batch_items], deletes=sorted(stale))


def get_batch(table: Table, org_id: str, job_id: str, attempt: int, seq: int) -> Item | None:
    return table.get(keys.migration_pk(org_id, job_id), keys.migration_batch_sk(attempt, seq))


def checkpoint_batch(
    table: Table, batch: Item, *, processed: Sequence[int], tallies: Mapping[str, int], errors: Sequence[str]
) -> None:
    """Remember what a batch run has handled so far (a re-run continues after it), while the
    batch is still uncounted."""
    update = Update(batch["PK"], batch["SK"]).equals("status", "pending")
    update.set(processed=list(processed), tallies=dict(tallies), errors=list(errors)[:5])
    with contextlib.suppress(ConditionFailed):  # counted meanwhile: nothing to remember
        update.apply(table)


def count_batch(
    table: Table,
    org_id: str,
    job_id: str,
    *,
    batch: Item,
    tallies: Mapping[str, int],
    folder_error: str | None,
    sample_error: str | None,
) -> bool:
    """Count a finished batch once: batch ``pending → done``, the folder's and the job's counters
    up by its tallies, in one transaction conditional on the job's attempt. False if it was
    counted before (a re-run) or belongs to an attempt that is over."""
    marker = Update(batch["PK"], batch["SK"]).equals("status", "pending")
    marker.set(status="done", tallies=dict(tallies), counted_at=_now_iso())
    counters = count_operations(
        org_id, job_id, batch=batch, tallies=tallies, folder_error=folder_error, sample_error=sample_error
    )
    try:
        run(table, [marker.op("batch"), *counters])
    except Rejected as rejected:
        if "batch" in rejected.roles or COUNT_JOB in rejected.roles:
            return False
        raise
    return True


COUNT_FOLDER, COUNT_JOB = "count:folder", "count:job"  # roles of the counting operations


def count_operations(
    org_id: str,
    job_id: str,
    *,
    batch: Item,
    tallies: Mapping[str, int],
    folder_error: str | None,
    sample_error: str | None,
) -> list[Op]:
    """The folder's and the job's counters up by a batch's tallies (the job's conditional on the
    batch's attempt): written with what marks the batch counted, and nothing else does."""
    imported, skipped, failed = (int(tallies.get(k, 0)) for k in ("imported", "skipped", "failed"))
    transferred = int(tallies.get("bytes", 0))  # RFC822.SIZE of what the batch fetched
    folder = Update(keys.migration_pk(org_id, job_id), keys.migration_folder_sk(int(batch["folder_seq"])))
    folder.add(imported=imported, skipped=skipped, failed=failed, batches_done=1)
    if folder_error:
        folder.set(error=folder_error, folder_failed=True)
    elif sample_error:
        folder.set_if_absent(error=sample_error)
    job = Update(keys.org_pk(org_id), keys.migration_sk(job_id)).equals("attempt", int(batch["attempt"]))
    job.add(
        imported_messages=imported,
        skipped_duplicates=skipped,
        failed_messages=failed,
        transferred_messages=imported + skipped + failed,
        transferred_bytes=transferred,
        batches_done=1,
    )
    job.set(updated_at=_now_iso())
    return [folder.op(COUNT_FOLDER), job.op(COUNT_JOB)]


def delete_attempt_work(table: Table, org_id: str, job_id: str) -> None:
    """Remove the batches and imported sets of a job that needs them no more (completed)."""
    partition = keys.migration_pk(org_id, job_id)
    for prefix in ("BATCH#", "DONE#"):
        doomed = [(i["PK"], i["SK"]) for i in _keys_with_prefix(table, partition, prefix)]
        batch_write(table, puts=[], deletes=doomed)


def delete_partition(table: Table, org_id: str, job_id: str, *, deadline: float) -> bool:
    """Delete the job's partition until done or ``deadline`` (monotonic); True when empty. What is
    left carries a TTL (batches, imported sets) and goes by itself."""
    partition = keys.migration_pk(org_id, job_id)
    while time.monotonic() < deadline:
        found = table.client.query(
            TableName=table.name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ProjectionExpression="PK, SK",
            Limit=250,
            ConsistentRead=True,
        ).get("Items", [])
        if not found:
            return True
        batch_write(table, puts=[], deletes=[(w["PK"]["S"], w["SK"]["S"]) for w in found])
    return False


def _keys_with_prefix(table: Table, partition: str, prefix: str) -> list[Item]:
    out: list[Item] = []
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":prefix": {"S": prefix}},
            "ProjectionExpression": "PK, SK",
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = table.client.query(**kwargs)
        out += [{"PK": w["PK"]["S"], "SK": w["SK"]["S"]} for w in response.get("Items", [])]
        start = response.get("LastEvaluatedKey")
        if not start:
            return out


# ----------------------------------------------------------------------------- imported sets


def done_sets(
    table: Table, org_id: str, job_id: str, raw_folder: str, uidvalidity: int
) -> tuple[set[int], set[int]]:
    """(imported UIDs, skipped UIDs) of one source folder in its UIDVALIDITY, over every attempt."""
    prefix = f"DONE#{rules.folder_hash(raw_folder)}#{uidvalidity}#"
    imported: set[int] = set()
    skipped: set[int] = set()
    for item in _all(table, keys.migration_pk(org_id, job_id), prefix):
        imported.update(int(u) for u in item.get("imported", []))
        skipped.update(int(u) for u in item.get("skipped", []))
    return imported, skipped


def remember_done(
    table: Table,
    org_id: str,
    job_id: str,
    *,
    raw_folder: str,
    uidvalidity: int,
    imported: Iterable[int],
    skipped: Iterable[int],
) -> None:
    """Add UIDs to the folder's imported sets (idempotent: set union), one UpdateItem per bucket."""
    folder = rules.folder_hash(raw_folder)
    by_bucket: dict[int, tuple[set[str], set[str]]] = {}
    for uid in imported:
        by_bucket.setdefault(rules.done_bucket(uid), (set(), set()))[0].add(str(uid))
    for uid in skipped:
        by_bucket.setdefault(rules.done_bucket(uid), (set(), set()))[1].add(str(uid))
    ttl = int(time.time()) + WORKING_TTL_SECONDS
    for bucket, (done, dupes) in sorted(by_bucket.items()):
        update = Update(
            keys.migration_pk(org_id, job_id),
            keys.migration_done_sk(folder, uidvalidity, bucket),
            upsert=True,
        )
        update.add_to_set(imported=done, skipped=dupes).set(ttl=ttl)
        update.apply(table)


def checkpoint_operations(
    org_id: str,
    job_id: str,
    *,
    batch: Item,
    processed: Sequence[int],
    tallies: Mapping[str, int],
    errors: Sequence[str],
    imported: Iterable[int],
    skipped: Iterable[int],
    count: bool = False,
) -> list[Op]:
    """``checkpoint_batch`` and ``remember_done`` as operations of the transaction that stores the
    messages they record (role ``checkpoint``: the batch was counted meanwhile; ``done:<bucket>``).
    ``count``: the batch is finished, and counted in the same transaction (``count_batch``'s work:
    the checkpoint marks it ``done``; roles ``count:folder``, ``count:job``)."""
    update = Update(batch["PK"], batch["SK"]).equals("status", "pending")
    update.set(processed=list(processed), tallies=dict(tallies), errors=list(errors)[:5])
    if count:
        update.set(status="done", counted_at=_now_iso())
    ops = [update.op("checkpoint")]
    if count:
        ops += count_operations(
            org_id,
            job_id,
            batch=batch,
            tallies=tallies,
            folder_error=None,
            sample_error=errors[0] if errors else None,
        )
    folder = rules.folder_hash(str(batch["raw_name"]))
    uidvalidity = int(batch["uidvalidity"])
    by_bucket: dict[int, tuple[set[str], set[str]]] = {}
    for uid in imported:
        by_bucket.setdefault(rules.done_bucket(uid), (set(), set()))[0].add(str(uid))
    for uid in skipped:
        by_bucket.setdefault(rules.done_bucket(uid), (set(), set()))[1].add(str(uid))
    ttl = int(time.time()) + WORKING_TTL_SECONDS
    for bucket, (done, dupes) in sorted(by_bucket.items()):
        sk = keys.migration_done_sk(folder, uidvalidity, bucket)
        done_update = Update(keys.migration_pk(org_id, job_id), sk, upsert=True)
        ops.append(done_update.add_to_set(imported=done, skipped=dupes).set(ttl=ttl).op(f"done:{bucket}"))
    return ops


# ----------------------------------------------------------------------------- duplicates

DUPLICATE_CANDIDATES = 100  # messages sharing one Message-ID read per lookup (one Query page)
_CANDIDATE_ATTRIBUTES = {
    "#id": "id",
    "#source": "migration_source",
    "#fingerprint": "content_fingerprint",
    "#raw": "raw_key",
    "#date": "date",
    "#from": "from",
    "#subject": "subject",
}


def messages_with_message_id(table: Table, org_id: str, mailbox_id: str, message_id_hash: str) -> list[Item]:
    """The mailbox's messages with this RFC Message-ID (GSI1, eventually consistent): at most
    ``DUPLICATE_CANDIDATES`` of them in one Query, and only what a duplicate check compares (the
    response stays small; the read costs what reading the items costs)."""
    partition = keys.message_id_index_pk(org_id, mailbox_id, message_id_hash)
    response = table.client.query(
        TableName=table.name,
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
        ExpressionAttributeNames=_CANDIDATE_ATTRIBUTES,
        ProjectionExpression=", ".join(_CANDIDATE_ATTRIBUTES),
        Limit=DUPLICATE_CANDIDATES,
    )
    return [deserialize(item) for item in response.get("Items", [])]


# ----------------------------------------------------------------------------- digest markers


def get_digest_marker(table: Table, org_id: str, mailbox_id: str, digest: str) -> Item | None:
    return table.get(keys.mailbox_pk(org_id, mailbox_id), keys.digest_marker_sk(digest), consistent=False)


# ----------------------------------------------------------------------------- helpers


def batch_write(table: Table, *, puts: Sequence[Item], deletes: Sequence[tuple[str, str]]) -> None:
    """BatchWriteItem in groups of 25, retrying unprocessed items with a short backoff."""
    requests: list[dict[str, Any]] = [{"PutRequest": {"Item": serialize(item)}} for item in puts]
    requests += [{"DeleteRequest": {"Key": serialize({"PK": pk, "SK": sk})}} for pk, sk in deletes]
    for start in range(0, len(requests), BATCH_WRITE_MAX):
        pending: list[dict[str, Any]] = requests[start : start + BATCH_WRITE_MAX]
        for attempt in range(10):
            response = table.client.batch_write_item(RequestItems={table.name: pending})
            pending = list((response.get("UnprocessedItems") or {}).get(table.name, []))
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise RuntimeError("BatchWriteItem left items unprocessed after 10 attempts")


def reset_counters() -> dict[str, int]:
    return dict.fromkeys(_COUNTERS, 0)


def _now_iso() -> str:
    from mailroom import clock

    return clock.now_iso()

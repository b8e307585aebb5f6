"""Bulk verification jobs (``/api/v1/verify/bulk``; docs/verification.md).

A job, from ``create_job``: the rows (a JSON list, a CSV or an uploaded CSV; up to 100,000) are
read and their distinct addresses found (duplicates are verified once and reported per row); with
fewer credits left than distinct addresses it is refused (402) before anything is written. One
transaction creates the job and takes its credits. The rows go to S3; the distinct addresses,
grouped by domain, go out as chunks of 500 on an SQS queue (``VerifyBulkQueue``): the fan-out,
bounded by the event source's maximum concurrency.

A chunk (``process_chunk``, the worker): verified with bounded concurrency through the process's
DNS cache (a domain's addresses are in as few chunks as possible, so each domain is asked about
once per worker at most), its results written to S3, then counted on the job in one conditional
update that names the chunk, in one transaction with the month's per-status tally (a redelivered
chunk is not counted twice; a chunk of a cancelled job is not counted). The worker that counts the
last chunk writes the results CSV and completes the job.

Cancel: the job stops counting chunks; the credits of the addresses not verified yet are given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import verify_bulk as rules
from mailroom.loops import run_on_thread_loop
from mailroom.observability import logger
from mailroom.services import verification
from mailroom.settings import get_settings
from mailroom.store import txn
from mailroom.store import verification as credit_store
from mailroom.store import verify_jobs as store
from mailroom.store.errors import ConditionFailed, ObjectMissing
from mailroom.store.table import Item, Page, Table

RUNNING, COMPLETED, CANCELLED = "running", "completed", "cancelled"
DOWNLOAD_SECONDS = 3600
UPLOAD_SECONDS = 3600
UPLOAD_CONTENT_TYPE = "text/csv"
STATUSES = ("deliverable", "undeliverable", "risky", "unknown")


def job_view(job: Item, *, now: float | None = None) -> dict[str, Any]:
    verified = int(job.get("verified", 0))
    started = clock.parse_iso(job["created_at"]).timestamp()
    ended = job.get("finished_at")
    elapsed = (clock.parse_iso(ended).timestamp() if ended else (now or time.time())) - started
    progress = rules.progress(done=verified, total=int(job["unique"]), elapsed_seconds=elapsed)
    return {
        "id": job["id"],
        "name": job.get("name"),
        "status": job["status"],
        "smtp": bool(job.get("smtp", False)),
        "rows": int(job["rows"]),
        "unique": int(job["unique"]),
        "verified": verified,
        "counts": {s: int(job.get(f"count_{s}", 0)) for s in STATUSES},
        "percent": progress.percent,
        "eta_seconds": progress.eta_seconds if job["status"] == RUNNING else None,
        "credits_used": int(job["credits"]) - int(job.get("refunded", 0)),
        "credits_refunded": int(job.get("refunded", 0)),
        "created_at": job["created_at"],
        "finished_at": job.get("finished_at"),
    }


def rows_of_csv(text: str) -> list[str]:
    try:
        return rules.from_csv(text)
    except rules.BadInput as exc:
        raise errors.validation(str(exc), field="csv", code="invalid_input") from exc


def new_upload(org_id: str) -> dict[str, Any]:
    """A pre-signed PUT for a CSV too large for a request body (``POST /bulk`` reads it by id)."""
    upload_id = ids.new_id("vup")
    url = store.upload_url(store.upload_key(org_id, upload_id), UPLOAD_CONTENT_TYPE, UPLOAD_SECONDS)
    expires = datetime.fromtimestamp(time.time() + UPLOAD_SECONDS, UTC)
    return {
        "id": upload_id,
        "url": url,
        "method": "PUT",
        "headers": {"Content-Type": UPLOAD_CONTENT_TYPE},
        "max_bytes": rules.MAX_UPLOAD_BYTES,
        "expires_at": clock.isoformat(expires),
    }


def rows_of_upload(org_id: str, upload_id: str) -> list[str]:
    """The addresses of an uploaded CSV (422 when it was not uploaded, is too large or not UTF-8)."""
    try:
        data, size = store.read_upload(store.upload_key(org_id, upload_id), rules.MAX_UPLOAD_BYTES)
    except ObjectMissing as missing:
        raise errors.validation(
            "Nothing was uploaded with this id (or the upload expired).",
            field="upload_id",
            code="upload_not_found",
        ) from missing
    if data is None:
        raise errors.validation(
            f"The upload is {size} bytes; at most {rules.MAX_UPLOAD_BYTES} are read.",
            field="upload_id",
            code="upload_too_large",
        )
    try:
        text = data.decode("utf-8-sig")  # spreadsheets write a byte order mark
    except UnicodeDecodeError as exc:
        raise errors.validation(
            "The upload is not UTF-8 text.", field="upload_id", code="invalid_input"
        ) from exc
    return rows_of_csv(text)


def discard_upload(org_id: str, upload_id: str) -> None:
    """Once its job exists (the job keeps its own copy of the rows)."""
    store.delete_files_named([store.upload_key(org_id, upload_id)])


def create_job(
    table: Table, org_id: str, rows: list[str], *, smtp: bool, name: str | None, source: str = "emails"
) -> Item:
    """Start a job over ``rows`` (read from the request's ``source`` field, named in a 422)."""
    try:
        rules.check_rows(rows)
    except rules.BadInput as exc:
        raise errors.validation(str(exc), field=source, code="invalid_input") from exc
    distinct = rules.unique(rows)
    credits = verification.credits_of(table, org_id)
    verification.require_credits(credits, len(distinct))
    chunks = rules.chunks(distinct)
    job_id = ids.new_id("vjb")
    now = clock.now_iso()
    job: Item = {
        "id": job_id,
        "org_id": org_id,
        "status": RUNNING,
        "smtp": smtp,
        "rows": len(rows),
        "unique": len(distinct),
        "chunks": len(chunks),
        "credits": len(distinct),
        "month": credits.month,
        "verified": 0,
        "created_at": now,
    }
    if name:
        job["name"] = name
    take = credit_store.consume_update(
        org_id,
        credits.month,
        allowance=credits.allowance,
        tally={},
        count=len(distinct),
        expires_at=int(credits.resets_at.timestamp()) + verification.CREDITS_RETENTION_SECONDS,
    )
    try:
        txn.run(table, [store.create_op(job), take.op("credits")])
    except txn.Rejected as rejected:
        raise verification.insufficient(verification.credits_of(table, org_id), len(distinct)) from rejected
    messages = [{"org_id": org_id, "job_id": job_id, "chunk": n, "emails": c} for n, c in enumerate(chunks)]
    try:
        # After the transaction: a refused job leaves nothing behind; a job whose rows or chunks
        # could not be written is cancelled, which gives its credits back.
        store.put_json(store.rows_key(org_id, job_id), rows)
        store.enqueue(messages)
    except Exception as exc:
        logger().exception("verification job not started", extra={"job_id": job_id})
        cancel(table, job)
        raise errors.Unavailable(
            "queue_unavailable", "The job could not be queued; it was cancelled and its credits returned."
        ) from exc
    return job


def list_jobs(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Page:
    return store.list_page(table, org_id, per_page=per_page, cursor=cursor)


def load(table: Table, org_id: str, job_id: str) -> Item:
    job = store.get(table, org_id, job_id)
    if job is None:
        raise errors.not_found("Verification job")
    return job


def download(job: Item) -> dict[str, Any]:
    if job["status"] != COMPLETED:
        raise errors.conflict(
            f"The job is {job['status']}: results are ready when it is completed.",
            code="job_not_completed",
            hint="Follow GET /api/v1/verify/bulk/{jobId} until status is completed.",
        )
    key = store.csv_key(job["org_id"], job["id"])
    url = store.download_url(key, f"verification-{job['id']}.csv", DOWNLOAD_SECONDS)
    expires = datetime.fromtimestamp(time.time() + DOWNLOAD_SECONDS, UTC)
    return {"url": url, "expires_at": clock.isoformat(expires), "content_type": "text/csv"}


def cancel(table: Table, job: Item) -> Item:
    """Stop the job and give back the credits of what was not verified (409 once it has ended)."""
    org_id, job_id = job["org_id"], job["id"]
    current = load(table, org_id, job_id)
    if current["status"] != RUNNING:
        raise errors.conflict(f"The job is {current['status']} already.", code="job_not_running")
    refund = int(current["credits"]) - int(current.get("verified", 0))
    try:
        ended = (
            store.update(org_id, job_id)
            .equals("status", RUNNING)
            .equals("verified", int(current.get("verified", 0)))
            .set(status=CANCELLED, refunded=refund, finished_at=clock.now_iso())
            .apply(table)
        )
    except ConditionFailed as moved:
        raise errors.concurrent_update() from moved
    if refund:
        credit_store.refund(table, org_id, current["month"], refund)
    return ended


def delete(table: Table, job: Item) -> None:
    if job["status"] == RUNNING:
        raise errors.conflict(
            "The job is running.", code="job_running", hint="Cancel it first (POST …/cancel)."
        )
    store.delete_files(job["org_id"], job["id"], int(job["chunks"]))
    store.delete(table, job["org_id"], job["id"])


# --- the worker -------------------------------------------------------------------------------------


async def verify_chunk(
    checker: verification.Verifier, emails: list[str], *, smtp: bool, concurrency: int
) -> dict[str, dict[str, Any]]:
    """Each address's result by its duplicate key, ``concurrency`` at a time (bench/verify_bulk.py
    measures this against a plain loop)."""
    limit = asyncio.Semaphore(concurrency)
    # One probe at a time per target domain: a mail server sees one connection from a job.
    domain_locks: dict[str, asyncio.Lock] = {}

    async def one(email: str) -> tuple[str, dict[str, Any]]:
        async with limit:
            if smtp:
                async with domain_locks.setdefault(rules.domain_of(email), asyncio.Lock()):
                    result = await checker.verify(email, smtp=True)
            else:
                result = await checker.verify(email, smtp=False)
        return rules.key_of(email), verification.verdict_view(result)

    return dict(await asyncio.gather(*(one(e) for e in emails)))


def process_chunk(table: Table, org_id: str, job_id: str, chunk: int, emails: list[str]) -> str:
    """Verify one chunk and count it on its job; what happened, for the log."""
    job = store.get(table, org_id, job_id)
    if job is None or job["status"] != RUNNING:
        return "skipped"
    if chunk not in {int(c) for c in job.get("done_chunks") or ()}:
        checker = verification.verifier(table, bulk_org=org_id)
        concurrency = get_settings().verify_bulk_concurrency
        results = run_on_thread_loop(
            verify_chunk(checker, emails, smtp=bool(job.get("smtp")), concurrency=concurrency)
        )
        store.put_json(store.chunk_key(org_id, job_id, chunk), results)
        counts = dict.fromkeys(STATUSES, 0)
        for result in results.values():
            counts[result["status"]] += 1
        tally = credit_store.tally_update(org_id, job["month"], {s: n for s, n in counts.items() if n})
        # The month's per-status tally moves in the same transaction, so a redelivered chunk is
        # neither counted nor tallied twice. Rejected: counted by an earlier delivery, or cancelled.
        with contextlib.suppress(txn.Rejected):
            txn.run(table, [_count(org_id, job_id, chunk, len(results), counts).op("job"), tally.op("tally")])
        job = store.get(table, org_id, job_id)
        if job is None or job["status"] != RUNNING:
            return "cancelled meanwhile"
    if len(job.get("done_chunks") or ()) >= int(job["chunks"]) and job["status"] == RUNNING:
        _complete(table, job)
        return "completed the job"
    return "counted"


def _count(org_id: str, job_id: str, chunk: int, verified: int, counts: dict[str, int]) -> txn.Update:
    """Count a chunk once: its number joins ``done_chunks`` in the same conditional update."""
    update = store.update(org_id, job_id).equals("status", RUNNING)
    update.when(f"NOT contains({update.name('done_chunks')}, {update.value(str(chunk))})")
    update.add_to_set(done_chunks={str(chunk)})
    return update.add(verified=verified, **{f"count_{s}": n for s, n in counts.items()})


def _complete(table: Table, job: Item) -> None:
    """Write the results CSV (every row, duplicates included, in input order), then complete."""
    org_id, job_id = job["org_id"], job["id"]
    rows: list[str] = store.get_json(store.rows_key(org_id, job_id))
    results: dict[str, dict[str, Any]] = {}
    for chunk in range(int(job["chunks"])):
        results.update(store.get_json(store.chunk_key(org_id, job_id, chunk)))
    store.put_csv(store.csv_key(org_id, job_id), rules.results_csv(rows, results))
    try:
        store.update(org_id, job_id).equals("status", RUNNING).set(
            status=COMPLETED, finished_at=clock.now_iso()
        ).apply(table)
    except ConditionFailed:
        return  # cancelled meanwhile, or another worker completed it

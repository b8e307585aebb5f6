"""Deleting a mailbox: a delete intent, its confirmation, and the asynchronous purge of its mail.

1. ``POST /api/v1/mailboxes/{id}:delete-intent`` records an intent that expires after
   ``INTENT_TTL`` (15 minutes).
2. ``POST /api/v1/delete-intents/{id}:confirm`` is one transaction: it spends one unit of the
   confirming token's daily budget (``MAILROOM_DELETE_DAILY_LIMIT``, per UTC day), enforces the
   token's cooldown since its previous delete (``MAILROOM_DELETE_COOLDOWN_SECONDS``), marks the
   intent confirmed (single use), deletes the mailbox item and its address entry, gives back its
   domain count and quota and its dedicated storage, and writes a purge job row. From then on the
   address is free and no mail is delivered to it. The mailbox's message tokens are revoked
   right after, and the purge job is sent to the purge queue.
3. The purge function (SQS) revokes any token left, deletes the mailbox's partition
   (``ORG#<org>#MBX#<mbx>``) page by page with BatchWriteItem and its S3 prefix
   (``orgs/<org>/mailboxes/<mbx>/``), and sends the job again if its Lambda runs short of time.
   The scheduled sweep re-sends jobs that have not finished 15 minutes after their last send
   (a lost message, or an enqueue that failed after the transaction), so every purge completes.

``/api/v0`` (agentmail-v0-api.txt) deletes an inbox with one ``DELETE`` and no intent:
``delete_now`` runs the same transaction as a confirmation (mailbox, address, counters, purge job)
without the intent and without the per-token budget and cooldown, which only guard the
intent/confirm flow of v1; the per-token rate limit still applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain.principal import Principal
from mailroom.errors import Gone, MailroomError, TooManyRequests
from mailroom.observability import logger, traced
from mailroom.settings import get_settings
from mailroom.store import (
    delete_intents,
    domains,
    keys,
    mail_purge,
    message_tokens,
    platform_domain,
    txn,
    usage,
)
from mailroom.store import mailboxes as mailbox_store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

INTENT_TTL = timedelta(minutes=15)
STALE_PURGE_AFTER = timedelta(minutes=15)
DAY = 86400
# Stop purging this long before the Lambda's deadline: one more page never takes longer.
PURGE_SAFETY_MS = 10_000
_CONFIRM_ATTEMPTS = 3


def intent_view(intent: Item, job: Item | None = None) -> dict[str, Any]:
    status = intent["status"]
    if status == "pending" and int(intent["expires_at_epoch"]) <= int(clock.utcnow().timestamp()):
        status = "expired"
    view: dict[str, Any] = {
        "id": intent["id"],
        "mailbox_id": intent["mailbox_id"],
        "address": intent["address"],
        "status": status,
        "expires_at": intent["expires_at"],
        "created_at": intent["created_at"],
        "created_by": intent.get("created_by"),
        "confirmed_at": intent.get("confirmed_at"),
        "confirmed_by": intent.get("confirmed_by"),
        "confirm_path": f"/api/v1/delete-intents/{intent['id']}:confirm",
        "purge": None,
    }
    if job is not None:
        view["purge"] = {
            "status": job["status"],
            "deleted_items": int(job.get("deleted_items", 0)),
            "deleted_objects": int(job.get("deleted_objects", 0)),
            "queued_at": job.get("queued_at"),
            "completed_at": job.get("completed_at"),
        }
    return view


def _day_start(now_epoch: int) -> int:
    return now_epoch - now_epoch % DAY


def daily_limit_error(now_epoch: int, limit: int) -> MailroomError:
    retry_after = max(1, _day_start(now_epoch) + DAY - now_epoch)
    return TooManyRequests(
        "delete_daily_limit_reached",
        f"This token has used its {limit} deletes for today (UTC).",
        hint=f"Retry after {retry_after} seconds, or use another token with mailboxes:delete.",
        retryable=True,
        retry_after=retry_after,
    )


def cooldown_error(retry_after: int, cooldown: int) -> MailroomError:
    return TooManyRequests(
        "delete_cooldown",
        f"Deletes by one token must be {cooldown} seconds apart.",
        hint=f"Retry after {retry_after} seconds.",
        retryable=True,
        retry_after=retry_after,
    )


def create_intent(table: Table, principal: Principal, mailbox: Item) -> Item:
    now = clock.utcnow()
    now_epoch = int(now.timestamp())
    limit = get_settings().delete_daily_limit
    # Fail early: an intent this token could not confirm today would only waste the caller's time.
    if (
        delete_intents.daily_used(
            table, principal.org_id, principal.token_id, day_start=_day_start(now_epoch)
        )
        >= limit
    ):
        raise daily_limit_error(now_epoch, limit)
    expires = now + INTENT_TTL
    intent: Item = {
        "id": ids.new_id("dli"),
        "org_id": principal.org_id,
        "mailbox_id": mailbox["id"],
        "address": mailbox["address"],
        "status": "pending",
        "expires_at": clock.isoformat(expires),
        "expires_at_epoch": int(expires.timestamp()),
        "created_at": clock.isoformat(now),
        "created_by": principal.token_id,
    }
    delete_intents.create(table, intent)
    return intent


def load_intent(table: Table, org_id: str, intent_id: str) -> Item:
    intent = delete_intents.get(table, org_id, intent_id)
    if intent is None:
        raise errors.not_found("Delete intent")
    return intent


def intent_with_purge(table: Table, org_id: str, intent_id: str) -> tuple[Item, Item | None]:
    """An intent (404 when none) and, once confirmed, the purge job of its mailbox."""
    intent = load_intent(table, org_id, intent_id)
    if intent["status"] != "confirmed":
        return intent, None
    job = delete_intents.get_purge_job(table, org_id, intent["mailbox_id"])
    # Only the job this intent's confirmation wrote is its progress.
    if job is not None and job.get("intent_id") != intent_id:
        job = None
    return intent, job


def _intent_error(intent: Item, now_epoch: int) -> MailroomError | None:
    if intent["status"] != "pending":
        return errors.conflict(
            "This delete intent was already confirmed",
            code="intent_already_confirmed",
            hint="An intent is single use; create a new one to delete another mailbox.",
        )
    if int(intent["expires_at_epoch"]) <= now_epoch:
        return Gone(
            "intent_expired",
            "This delete intent has expired",
            hint="Create a new intent (POST /api/v1/mailboxes/{id}:delete-intent); confirm it in 15 min.",
        )
    return None


@dataclass(frozen=True, slots=True)
class Confirmed:
    intent: Item
    job: Item
    enqueued: bool
    revoked_tokens: int


def confirm(table: Table, principal: Principal, intent_id: str) -> Confirmed:
    settings = get_settings()
    org_id = principal.org_id
    for _ in range(_CONFIRM_ATTEMPTS):
        intent = load_intent(table, org_id, intent_id)
        now = clock.utcnow()
        now_epoch, now_iso = int(now.timestamp()), clock.isoformat(now)
        error = _intent_error(intent, now_epoch)
        if error:
            raise error
        mailbox = mailbox_store.get(table, org_id, intent["mailbox_id"])
        if mailbox is None:
            raise errors.not_found("Mailbox")
        job = _purge_job(mailbox, intent_id=intent["id"], now_iso=now_iso)
        operations = [
            delete_intents.confirm_op(
                intent, now_iso=now_iso, now_epoch=now_epoch, confirmed_by=principal.token_id
            ),
            *_removal_ops(table, mailbox, job),
            delete_intents.daily_budget_op(
                org_id, principal.token_id, day_start=_day_start(now_epoch), limit=settings.delete_daily_limit
            ),
            delete_intents.cooldown_op(
                org_id, principal.token_id, now_epoch=now_epoch, cooldown=settings.delete_cooldown_seconds
            ),
        ]
        try:
            txn.run(table, operations)
        except txn.Rejected as rejected:
            roles = set(rejected.roles)
            if roles & {"intent", f"mailbox:{mailbox['id']}", "purge_job"}:
                continue  # the intent or mailbox changed meanwhile: the next round says how
            if "daily_budget" in roles:
                raise daily_limit_error(now_epoch, settings.delete_daily_limit) from rejected
            if "cooldown" in roles:
                last = delete_intents.last_delete_epoch(table, org_id, principal.token_id) or now_epoch
                retry_after = max(1, last + settings.delete_cooldown_seconds - now_epoch)
                raise cooldown_error(retry_after, settings.delete_cooldown_seconds) from rejected
            raise
        revoked = _revoke_tokens(table, org_id, mailbox["id"])
        enqueued = _enqueue(job)
        return Confirmed(
            intent={
                **intent,
                "status": "confirmed",
                "confirmed_at": now_iso,
                "confirmed_by": principal.token_id,
            },
            job=job,
            enqueued=enqueued,
            revoked_tokens=revoked,
        )
    raise errors.concurrent_update()


def _purge_job(mailbox: Item, *, intent_id: str | None, now_iso: str) -> Item:
    return {
        "org_id": mailbox["org_id"],
        "mailbox_id": mailbox["id"],
        "address": mailbox["address"],
        "intent_id": intent_id,
        "status": "queued",
        "queued_at": now_iso,
        "deleted_items": 0,
        "deleted_objects": 0,
        "sends": 1,
    }


def _removal_ops(table: Table, mailbox: Item, job: Item) -> list[txn.Op]:
    """Delete the mailbox as read, free its address, give back its counters, queue its purge."""
    org_id = mailbox["org_id"]
    domain = domains.get(table, org_id, mailbox["domain_id"])
    allocation = int(mailbox.get("storage_allocation_mb") or 0)
    operations = [
        mailbox_store.delete_op(mailbox),
        mailbox_store.address_release(org_id, mailbox["address"], mailbox["id"]),
        mailbox_store.org_change(
            {"id": org_id},
            {},
            mailboxes=-1,
            dedicated_mb=-allocation,
            used_bytes=-int(mailbox.get("used_bytes", 0)),
        ),
        delete_intents.purge_job_op(job),
    ]
    if int(mailbox.get("used_bytes", 0)) > 0:
        month = clock.utcnow().strftime("%Y-%m")
        operations.append(usage.counter_op(org_id, month, stored_bytes_removed=int(mailbox["used_bytes"])))
    if platform_domain.is_platform(mailbox["domain_id"]):
        operations.append(platform_domain.address_release(mailbox["address"], mailbox["id"]))
    if domain is not None:
        operations.append(
            mailbox_store.domain_change(domain, {}, mailboxes=-1, quota_mb=-int(mailbox["quota"]))
        )
    return operations


def delete_now(table: Table, org_id: str, mailbox_id: str, *, what: str = "Mailbox") -> Item:
    """Delete a mailbox at once (v0's ``DELETE /inboxes/{id}``); returns its purge job.

    404 (``what`` not found) when it does not exist."""
    for _ in range(_CONFIRM_ATTEMPTS):
        mailbox = mailbox_store.get(table, org_id, mailbox_id)
        if mailbox is None:
            raise errors.not_found(what)
        job = _purge_job(mailbox, intent_id=None, now_iso=clock.now_iso())
        try:
            txn.run(table, _removal_ops(table, mailbox, job))
        except txn.Rejected as rejected:
            if set(rejected.roles) & {f"mailbox:{mailbox_id}", "purge_job"}:
                continue  # changed (mail arrived) or deleted meanwhile: the next round says which
            raise
        _revoke_tokens(table, org_id, mailbox_id)
        _enqueue(job)
        return job
    raise errors.concurrent_update()


def _revoke_tokens(table: Table, org_id: str, mailbox_id: str) -> int:
    try:
        return message_tokens.revoke_all(table, org_id, mailbox_id)
    except Exception:
        # The purge job revokes them too; the request must not fail after the delete committed.
        logger().exception("message tokens not revoked at confirm", extra={"mailbox_id": mailbox_id})
        return 0


def _enqueue(job: Item) -> bool:
    try:
        mail_purge.enqueue({"org_id": job["org_id"], "mailbox_id": job["mailbox_id"]})
    except Exception:
        # The job row is pending in the index: the sweep sends it within STALE_PURGE_AFTER.
        logger().exception(
            "purge job not enqueued; the sweep will send it", extra={"mailbox_id": job["mailbox_id"]}
        )
        return False
    return True


# --- the purge function -----------------------------------------------------------------------------


@traced
def purge(table: Table, org_id: str, mailbox_id: str, *, remaining_ms: Callable[[], int]) -> bool:
    """Delete what is left of a deleted mailbox's data. True when it is all gone (or there was no
    such job: a duplicate delivery); False when time ran short and the job must be sent again."""
    job = delete_intents.get_purge_job(table, org_id, mailbox_id)
    if job is None or job.get("status") == "completed":
        return True
    if mailbox_store.get(table, org_id, mailbox_id) is not None:
        # Only a mailbox deleted by a confirmed intent has a job; never purge a live one.
        logger().error("purge job for a live mailbox ignored", extra={"mailbox_id": mailbox_id})
        return True
    message_tokens.revoke_all(table, org_id, mailbox_id)
    while remaining_ms() > PURGE_SAFETY_MS:
        deleted = mail_purge.delete_partition_page(table, org_id, mailbox_id)
        if deleted == 0:
            break
        delete_intents.purge_progress(table, org_id, mailbox_id, deleted_items=deleted)
    else:
        return False
    while remaining_ms() > PURGE_SAFETY_MS:
        deleted = mail_purge.delete_objects_page(org_id, mailbox_id)
        if deleted == 0:
            break
        delete_intents.purge_progress(table, org_id, mailbox_id, deleted_objects=deleted)
    else:
        return False
    now = clock.utcnow()
    delete_intents.purge_done(
        table, org_id, mailbox_id, now_iso=clock.isoformat(now), now_epoch=int(now.timestamp())
    )
    return True


def requeue(table: Table, org_id: str, mailbox_id: str) -> bool:
    """Send an unfinished job again; False (nothing sent) when it finished meanwhile."""
    try:
        delete_intents.purge_requeued(table, org_id, mailbox_id, queued_at=clock.now_iso())
    except ConditionFailed:
        return False
    mail_purge.enqueue({"org_id": org_id, "mailbox_id": mailbox_id})
    return True


@traced
def resend_stale(table: Table, *, now: datetime | None = None, max_jobs: int = 500) -> dict[str, int]:
    """The sweep's half for purges: send again every unfinished job idle for STALE_PURGE_AFTER."""
    now = now or clock.utcnow()
    older_than = clock.isoformat(now - STALE_PURGE_AFTER)
    counts = {"resent": 0, "errors": 0}
    for shard in range(keys.PURGE_SHARDS):
        cursor = None
        while counts["resent"] + counts["errors"] < max_jobs:
            page = delete_intents.stale_purges(
                table, shard=shard, older_than_iso=older_than, per_page=50, cursor=cursor
            )
            for job in page.items:
                try:
                    counts["resent"] += requeue(table, job["org_id"], job["mailbox_id"])
                except Exception:
                    counts["errors"] += 1
                    logger().exception("purge job not re-sent", extra={"mailbox_id": job["mailbox_id"]})
            cursor = page.next_cursor
            if cursor is None:
                break
    return counts

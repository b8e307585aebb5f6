"""Scheduled send: a send body (or a draft) sent once at ``send_at`` by a one-off EventBridge
Scheduler schedule that invokes the scheduled-send function (entry/scheduled_send.py).

Scheduling checks what a send checks, now, so a mistake is a 422 to the caller rather than a
failure at night: the template is rendered (a missing variable refused), the identity resolved
and its signature appended, the MIME composed (recipients, size, headers). What is stored is the
send as it will go out (``request``); a draft is stored by id and sent as it is then.

At the time (``fire``): the item is claimed (pending → sending, conditional: a second firing or a
cancel that came first makes it a no-op), the mailbox loaded again (paused, deactivated or
deleted meanwhile → ``failed`` with the reason; the body stays on record, nothing is lost), and
the send runs through ``sending.send`` like any other: the Sent copy threads, ``message.sent``
fires now. A failure before anything went out that is not the request's fault (an AWS outage)
gives the claim back and raises, so Lambda's retries fire it again.

Cancelling is pending → cancelled (conditional): it wins, or it loses to the firing with a 409;
the schedule is then deleted (it would only find the item cancelled anyway).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from mailroom import clock, errors, ids
from mailroom.errors import MailroomError
from mailroom.mail import compose as mime
from mailroom.mail.compose import ComposeError
from mailroom.observability import logger
from mailroom.services import composing, drafts, identities, mailbox_policy, sending
from mailroom.services.composing import ComposeOptions
from mailroom.services.sending import AttachmentInput, SendRequest, Sent
from mailroom.settings import get_settings
from mailroom.store import mailboxes, scheduler
from mailroom.store import scheduled_sends as store
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Page, Table

MAX_AHEAD = timedelta(days=365)
# The send as it will go out is kept on the item (400 KB at most): larger bodies (attachments)
# are saved as a draft and scheduled by draft_uid.
MAX_REQUEST_BYTES = 300_000
SCHEDULE_PREFIX = "mailroom-send-"
# Lambda's asynchronous invocation tries an event three times (MaximumRetryAttempts: 2): a failure
# that is not the send's fault is given back for the next try, and recorded on the last one.
MAX_ATTEMPTS = 3


def _target() -> scheduler.Target:
    settings = get_settings()
    if not (settings.scheduled_send_function_arn and settings.scheduler_role_arn):
        raise errors.Unavailable(
            "scheduling_unavailable",
            "Scheduled send is not configured on this deployment.",
            hint="Set MAILROOM_SCHEDULED_SEND_FUNCTION_ARN and MAILROOM_SCHEDULER_ROLE_ARN.",
        )
    return scheduler.Target(
        function_arn=settings.scheduled_send_function_arn,
        role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.scheduled_send_dlq_arn,
        group=settings.schedule_group,
    )


def schedule_name(scheduled_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{scheduled_id}"


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_time(send_at: datetime, time_zone: str | None, now: datetime) -> str:
    """The zone the schedule runs in; 422 for a time too soon, too far, or an unknown zone."""
    if send_at.tzinfo is None:
        raise errors.validation("send_at needs an offset (e.g. 2026-05-01T09:00:00+02:00)", field="send_at")
    lead = timedelta(seconds=get_settings().schedule_min_lead_seconds)
    if send_at < now + lead:
        raise errors.validation(
            f"send_at must be at least {int(lead.total_seconds())} seconds ahead", field="send_at"
        )
    if send_at > now + MAX_AHEAD:
        raise errors.validation("send_at must be at most one year ahead", field="send_at")
    if time_zone is None:
        return "UTC"
    # Checked against the zone names, not by loading: a path ("America", "../x") must not reach the
    # file system, and a directory of the database is not a zone.
    if time_zone not in _zones():
        raise errors.validation(f"unknown time zone {time_zone[:64]!r} (an IANA name)", field="time_zone")
    return time_zone


def _checked_request(
    table: Table, mailbox: Item, request: SendRequest, options: ComposeOptions
) -> tuple[SendRequest, str | None]:
    """The send as it will go out (template rendered, signature appended) and its identity id,
    composed once now so that what a send would refuse is refused at scheduling."""
    prepared = composing.prepare(table, mailbox, request, options)
    request = prepared.request
    sender = prepared.sender or sending.resolve_sender(table, mailbox, request.sender)
    attachments = sending.resolve_attachments(table, mailbox, request.attachments)
    try:
        composed = mime.compose(
            sending.draft_of(request, sender, attachments), now=clock.utcnow().timestamp()
        )
    except ComposeError as exc:
        raise sending.compose_error(exc) from exc
    sending.check_quota(mailbox, len(composed.raw))
    return request, prepared.identity.identity_id if prepared.identity else None


def _request_of(saved: dict[str, Any]) -> SendRequest:
    fields = dict(saved)
    fields["attachments"] = [AttachmentInput(**a) for a in fields.get("attachments") or []]
    return SendRequest(**fields)


def create(
    table: Table,
    mailbox: Item,
    *,
    send_at: datetime,
    time_zone: str | None,
    request: SendRequest | None = None,
    options: ComposeOptions | None = None,
    draft_id: str | None = None,
) -> Item:
    """Schedule a send body (``request`` with ``options``) or a draft (``draft_id``)."""
    blocked = mailbox_policy.send_blocked(mailbox)
    if blocked is not None:
        raise blocked
    now = clock.utcnow()
    zone = check_time(send_at, time_zone, now)
    target = _target()
    scheduled_id = ids.new_id("sch")
    item: dict[str, Any] = {
        "id": scheduled_id,
        "org_id": mailbox["org_id"],
        "mailbox_id": mailbox["id"],
        "send_at": clock.isoformat(send_at),
        "time_zone": zone,
        "created_at": clock.isoformat(now),
        "updated_at": clock.isoformat(now),
    }
    if draft_id is not None:
        draft = drafts.load_draft(table, mailbox, draft_id)
        if not (draft.get("to") or draft.get("cc") or draft.get("bcc")):
            raise sending.invalid(
                "draft_uid", "the draft has no recipient yet: add one (PUT) before scheduling"
            )
        item |= {
            "draft_id": draft_id,
            "summary": _summary(draft.get("to"), draft.get("cc"), draft.get("bcc"), draft.get("subject")),
        }
    else:
        if request is None:
            raise errors.validation("give a send body or a draft_uid", field="draft_uid")
        checked, identity_id = _checked_request(table, mailbox, request, options or ComposeOptions())
        saved = dataclasses.asdict(checked)
        if len(json.dumps(saved)) > MAX_REQUEST_BYTES:
            raise errors.validation(
                "a scheduled body is at most 300 KB: save it as a draft and schedule the draft_uid",
                field="attachments",
                code="scheduled_body_too_large",
            )
        item |= {
            "request": saved,
            "identity_id": identity_id,
            "summary": _summary(checked.to, checked.cc, checked.bcc, checked.subject),
        }
    store.create(table, item)
    try:
        scheduler.create_one_off(
            schedule_name(scheduled_id),
            send_at,
            zone,
            {"org_id": item["org_id"], "mailbox_id": item["mailbox_id"], "scheduled_id": scheduled_id},
            target,
        )
    except StoreError as exc:  # AlreadyExists among them: a name is a fresh id, so never ours
        # Without its timer the send would stay pending forever: record it as failed instead.
        token = secrets.token_hex(8)
        if store.claim(table, item, token) is not None:
            store.finish(
                table, item, token, store.FAILED, failure={"code": "schedule_failed", "message": str(exc)}
            )
        raise errors.UpstreamFailed(
            "scheduler_unavailable",
            "EventBridge Scheduler refused the schedule; nothing was scheduled.",
            retryable=True,
        ) from exc
    created = store.get(table, str(item["org_id"]), str(item["mailbox_id"]), scheduled_id)
    return created or item


def _summary(to: Any, cc: Any, bcc: Any, subject: Any) -> dict[str, Any]:
    return {"to": list(to or []), "cc": list(cc or []), "bcc": list(bcc or []), "subject": str(subject or "")}


def load(table: Table, mailbox: Item, scheduled_id: str) -> Item:
    item = (
        store.get(table, str(mailbox["org_id"]), str(mailbox["id"]), scheduled_id)
        if ids.is_id(scheduled_id, "sch")
        else None
    )
    if item is None:
        raise errors.not_found("Scheduled send")
    return item


def list_scheduled(
    table: Table, mailbox: Item, *, per_page: int, cursor: str | None, status: str | None
) -> Page:
    return store.list_page(
        table, str(mailbox["org_id"]), str(mailbox["id"]), per_page=per_page, cursor=cursor, status=status
    )


def cancel(table: Table, mailbox: Item, scheduled_id: str) -> Item:
    """pending → cancelled, then the schedule goes; 409 ``scheduled_send_not_pending`` if it fired
    (or was cancelled) first."""
    item = load(table, mailbox, scheduled_id)
    cancelled = store.cancel(table, item)
    if cancelled is None:
        current = load(table, mailbox, scheduled_id)
        raise errors.conflict(
            f"Scheduled send {scheduled_id} is {current['status']}: only a pending one can be cancelled.",
            code="scheduled_send_not_pending",
        )
    try:
        scheduler.delete(schedule_name(scheduled_id), get_settings().schedule_group)
    except StoreError:
        # Cancelled all the same: the firing finds the item cancelled and sends nothing.
        logger().warning("schedule not deleted", extra={"scheduled_id": scheduled_id}, exc_info=True)
    return cancelled


def view(item: Item) -> dict[str, Any]:
    summary = item.get("summary") or {}
    return {
        "id": item["id"],
        "status": item["status"],
        "send_at": item["send_at"],
        "time_zone": item["time_zone"],
        "draft_uid": item.get("draft_id"),
        "to": list(summary.get("to") or []),
        "cc": list(summary.get("cc") or []),
        "bcc": list(summary.get("bcc") or []),
        "subject": str(summary.get("subject") or ""),
        "sent_message_id": item.get("sent_message_id"),
        "failure": item.get("failure"),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
        "sent_at": item.get("sent_at"),
        "failed_at": item.get("failed_at"),
        "cancelled_at": item.get("cancelled_at"),
    }


# --------------------------------------------------------------------------------- the firing


def fire(table: Table, org_id: str, mailbox_id: str, scheduled_id: str) -> str:
    """Send it if it is still pending; the state it ended in (or ``missing``/``skipped``)."""
    item = store.get(table, org_id, mailbox_id, scheduled_id)
    if item is None:
        return "missing"
    token = secrets.token_hex(16)
    claimed = store.claim(table, item, token)
    if claimed is None:
        return "skipped"  # cancelled, or another firing of the same schedule has it
    last_attempt = int(claimed.get("attempts", 1)) >= MAX_ATTEMPTS
    mailbox = mailboxes.get(table, org_id, mailbox_id)
    try:
        if mailbox is None:
            raise errors.Gone("mailbox_deleted", "The mailbox was deleted before the time.")
        blocked = mailbox_policy.send_blocked(mailbox)
        if blocked is not None:
            raise blocked
        sent = _send(table, mailbox, item)
    except MailroomError as exc:
        if exc.retryable and not last_attempt:
            store.release(table, item, token)
            raise
        store.finish(table, item, token, store.FAILED, failure={"code": exc.code, "message": exc.message})
        return store.FAILED
    except Exception:
        if last_attempt:
            failure = {
                "code": "send_failed",
                "message": "The send failed on every attempt; nothing was sent.",
            }
            store.finish(table, item, token, store.FAILED, failure=failure)
            raise
        store.release(table, item, token)
        raise
    store.finish(table, item, token, store.SENT, sent_message_id=sent.message_id)
    return store.SENT


def _send(table: Table, mailbox: Item, item: Item) -> Sent:
    if item.get("draft_id"):
        return drafts.send(table, mailbox, str(item["draft_id"]))
    identity_id = item.get("identity_id")
    # The identity is checked again (an alias may be gone); its signature is in the bodies.
    chosen = identities.for_send(table, mailbox, str(identity_id)) if identity_id else None
    return sending.send(
        table, mailbox, _request_of(item["request"]), sender=chosen.sender if chosen else None
    )

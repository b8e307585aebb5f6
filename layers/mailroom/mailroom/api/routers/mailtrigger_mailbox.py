"""The MailTrigger mailbox view (mailtrigger-api.txt; docs/automation-mailbox.md): ``/api/v1/mailbox``
and ``/api/v1/mailbox/{mailbox_id}`` with its ``archives``, ``logs``, ``logs/{log_id}``, ``testmail``
and ``mail/send``, each also with the trailing slash the contract page writes (api/paths.py).
``data`` is the mailbox_data function's (its routes are more specific).

The mailboxes are those of ``/api/v1/mailboxes`` (services/mailboxes.py: the same limits, quotas
and validation); deleting one goes through the delete-intent rules of v1 (a first ``DELETE`` makes
an intent, a second with ``?intent=<intent id>`` confirms it), so the per-token daily budget and
cooldown guard this path as they guard the other.

Scopes: ops tokens use the mailbox scopes for the mailboxes themselves, ``automation:read`` for the
archives and the log, ``automation:write`` for test mail and ``mailboxes:write`` to send (as
``/api/v0``'s inbox send does). A mailbox's own message token may read it, its archives and its log
(``messages:read``), send test mail (``messages:write``) and send (``messages:send``); another
mailbox's id is 404 for it, exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from mailroom import errors as kinds
from mailroom.api import pagination
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import ACCESS_ATTRIBUTE, current, require
from mailroom.api.schemas import mailtrigger as schemas
from mailroom.api.schemas.delete_intents import ConfirmedIntent, IntentView
from mailroom.api.schemas.send import SENT_201, SendMessageBody, SentView
from mailroom.domain.principal import Principal
from mailroom.domain.tokens import TokenType
from mailroom.services import composing, deletion, mailtrigger, testmail
from mailroom.services import mailboxes as mailbox_service
from mailroom.services.mail_views import sent_view
from mailroom.store.table import Item, Table

router = api_router("/api/v1/mailbox", tags=["mailtrigger mailboxes"])

AUTOMATION_READ, AUTOMATION_WRITE = "automation:read", "automation:write"
MailboxId = Annotated[
    str,
    Path(max_length=320, description="The mailbox's id (mbx_...) or its address (any case)"),
]
LogId = Annotated[str, Path(max_length=64, description="The log entry's id (log_...)")]
NOT_FOUND = errors(e404="not_found: no such mailbox in this organization")
MAILBOX_ERRORS = (
    "validation_error, unknown_domain, invalid_address, weak_password, quota_exceeds_maxquota: a field is "
    "wrong (`fields`); mailbox_limit_reached, domain_mailbox_limit_reached, domain_quota_exceeded, "
    "storage_pool_exceeded: a limit would be exceeded"
)


@dataclass(frozen=True, slots=True)
class LoadedMailbox:
    principal: Principal
    item: Item


def mailbox_for(ops_scope: str, message_scope: str | None) -> Callable[[Request, str], LoadedMailbox]:
    """The mailbox the path names, for an ops token with ``ops_scope`` or (``message_scope`` given)
    for that mailbox's own message token with ``message_scope``."""

    def load(request: Request, mailbox_id: MailboxId) -> LoadedMailbox:
        principal = current(request)
        own: str | None = None  # a message token's own mailbox: the only one it may name
        if principal.token_type is TokenType.MESSAGE and message_scope is not None:
            require(message_scope, token_type=TokenType.MESSAGE)(request)
            own = principal.mailbox_id or ""
        else:
            require(ops_scope)(request)
        # By id or address; for a message token, another mailbox is as absent as a missing one.
        mailbox = mailbox_service.load(Table(), principal.org_id, mailbox_id)
        if own is not None and mailbox["id"] != own:
            raise kinds.not_found("Mailbox")
        return LoadedMailbox(principal, mailbox)

    # The document's x-mailroom-scopes reads this (require() is called inside, out of its sight).
    access = {TokenType.OPS.value: [ops_scope]}
    if message_scope is not None:
        access[TokenType.MESSAGE.value] = [message_scope]
    setattr(load, ACCESS_ATTRIBUTE, access)
    return load


def _audit(request: Request, mailbox: LoadedMailbox, **details: Any) -> None:
    audit_target(request, "mailbox", mailbox.item["id"], address=mailbox.item["address"], **details)


# --- mailboxes ----------------------------------------------------------------------------------------


@router.get(
    "",
    name="mailtrigger.mailbox.list",
    response_model=ListOf[schemas.MailTriggerMailbox],
    summary="List mailboxes (MailTrigger view)",
)
async def list_mailboxes(
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The organization's mailboxes, a page at a time, each with the links an automation client
    follows (archives, data, logs, testmail, send); `meta.total` counts them."""
    listing = mailbox_service.list_mailboxes(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [mailtrigger.mailbox_view(m) for m in listing.page.items]
    return pagination.envelope(request, listing.page, data, per_page=page_query.per_page, total=listing.total)


@router.post(
    "",
    name="mailtrigger.mailbox.create",
    status_code=201,
    response_model=One[schemas.MailTriggerMailbox],
    summary="Create a mailbox (MailTrigger view)",
    responses=errors(
        e409="address_taken: the address is a mailbox, alias or pending invite already", e422=MAILBOX_ERRORS
    ),
)
async def create_mailbox(
    body: schemas.MailTriggerCreateMailbox,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:create"))],
) -> dict[str, Any]:
    """Create a mailbox on one of the organization's domains; the password is optional (a mailbox
    without one receives mail and is driven by tokens, but cannot sign in)."""
    audit_target(request, "mailbox", "-", local_part=body.local_part, domain=body.domain)
    created = mailbox_service.create_mailbox(
        Table(),
        principal.org_id,
        mailbox_service.NewMailbox(
            local_part=body.local_part,
            domain=body.domain,
            password=body.password,
            name=body.name,
            quota=body.quota,
            active=body.active,
            note=body.note,
        ),
    )
    audit_target(request, "mailbox", created["id"], address=created["address"])
    return one(mailtrigger.mailbox_view(created))


@router.get(
    "/{mailbox_id}",
    name="mailtrigger.mailbox.get",
    response_model=One[schemas.MailTriggerMailbox],
    summary="Get a mailbox (MailTrigger view)",
    responses=NOT_FOUND,
)
async def get_mailbox(
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_for("mailboxes:read", "messages:read"))],
) -> dict[str, Any]:
    """The mailbox with its quota, usage, message count and links."""
    return one(mailtrigger.mailbox_view(mailbox.item))


_UPDATE_ERRORS = {
    **NOT_FOUND,
    **errors(
        e409="concurrent_update: the mailbox changed meanwhile (retry)",
        e422="validation_error, quota_exceeds_maxquota, quota_exceeds_allocation, domain_quota_exceeded",
    ),
}
Writable = Annotated[LoadedMailbox, Depends(mailbox_for("mailboxes:write", None))]


@router.patch(
    "/{mailbox_id}",
    name="mailtrigger.mailbox.update",
    response_model=One[schemas.MailTriggerMailbox],
    summary="Update a mailbox's name, active flag, quota or note",
    responses=_UPDATE_ERRORS,
)
async def update_mailbox(
    body: schemas.MailTriggerUpdateMailbox, request: Request, mailbox: Writable
) -> dict[str, Any]:
    """Change the fields sent. A new quota moves the domain's quota with it, atomically."""
    given = body.model_fields_set
    _audit(request, mailbox, fields=sorted(given))
    fields: dict[str, Any] = {n: getattr(body, n) for n in ("name", "active", "note") if n in given}
    updated = mailbox_service.update_mailbox(Table(), mailbox.item, fields=fields, quota=body.quota)
    return one(mailtrigger.mailbox_view(updated))


@router.put(
    "/{mailbox_id}",
    name="mailtrigger.mailbox.replace",
    response_model=One[schemas.MailTriggerMailbox],
    summary="Replace a mailbox's name, active flag, quota and note",
    responses=_UPDATE_ERRORS,
)
async def replace_mailbox(
    body: schemas.MailTriggerReplaceMailbox, request: Request, mailbox: Writable
) -> dict[str, Any]:
    """The editable mailbox as a whole: name, active and quota must be sent; a note left out is
    cleared. Its address, password and forwarding are not touched here."""
    _audit(request, mailbox, fields=sorted(body.model_fields_set))
    fields: dict[str, Any] = {"name": body.name, "active": body.active, "note": body.note}
    updated = mailbox_service.update_mailbox(Table(), mailbox.item, fields=fields, quota=body.quota)
    return one(mailtrigger.mailbox_view(updated))


@router.delete(
    "/{mailbox_id}",
    name="mailtrigger.mailbox.delete",
    response_model=One[ConfirmedIntent],
    summary="Delete a mailbox: an intent first, then its confirmation",
    responses={
        202: {
            "model": One[IntentView],
            "description": "Without `intent`: a delete intent, valid 15 minutes; nothing is deleted yet. "
            "Send the same DELETE with `?intent=<its id>` to delete the mailbox",
        },
        **errors(
            e404="not_found: no such mailbox, or `intent` names no delete intent of this mailbox",
            e409="intent_already_confirmed: an intent is single use; concurrent_update (retry)",
            e410="intent_expired: make a new intent and confirm it within 15 minutes",
        ),
        429: {
            "description": "rate_limited; delete_daily_limit_reached or delete_cooldown: this token's "
            "deletes are used up for today or too close together; Retry-After says when"
        },
    },
)
async def delete_mailbox(
    request: Request,
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_for("mailboxes:delete", None))],
    intent: Annotated[
        str | None,
        Query(max_length=64, description="The id of the delete intent the first DELETE answered (dli_...)"),
    ] = None,
) -> Any:
    """Deleting a mailbox takes two calls, as the v1 delete intents do: without `intent` the
    answer is 202 with a delete intent (nothing is deleted); the same DELETE with
    `?intent=<intent id>` within 15 minutes deletes the mailbox at once (its address is free, its
    message tokens revoked, its mail purged asynchronously) and answers 200 with the confirmed
    intent. Deletes count against the token's daily budget and cooldown."""
    item = mailbox.item
    if intent is None:
        _audit(request, mailbox)
        created = deletion.create_intent(Table(), mailbox.principal, item)
        audit_target(request, "delete_intent", created["id"], mailbox_id=item["id"], address=item["address"])
        body = one(deletion.intent_view(created))
        return JSONResponse(status_code=202, content=jsonable_encoder(body))
    audit_target(request, "delete_intent", intent, mailbox_id=item["id"], address=item["address"])
    if deletion.load_intent(Table(), mailbox.principal.org_id, intent)["mailbox_id"] != item["id"]:
        raise kinds.not_found("Delete intent")
    confirmed = deletion.confirm(Table(), mailbox.principal, intent)
    audit_target(
        request,
        "delete_intent",
        intent,
        mailbox_id=item["id"],
        address=item["address"],
        revoked_message_tokens=confirmed.revoked_tokens,
    )
    return one({**deletion.intent_view(confirmed.intent, confirmed.job), "mailbox_deleted": True})


# --- archives -----------------------------------------------------------------------------------------

Since = Annotated[datetime | None, Query(description="Only mail received at or after this moment (ISO 8601)")]
Until = Annotated[
    datetime | None, Query(description="Only mail received at or before this moment (ISO 8601)")
]
TextFilter = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get(
    "/{mailbox_id}/archives",
    name="mailtrigger.mailbox.archives",
    response_model=ListOf[schemas.ArchivedMessage],
    summary="Browse a mailbox's stored mail, by date or by route",
    responses=NOT_FOUND,
)
async def list_archives(
    request: Request,
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_for(AUTOMATION_READ, "messages:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    since: Since = None,
    until: Until = None,
    route: Annotated[
        str | None,
        Query(max_length=64, description="Only mail this route matched (rte_...); not with the text filters"),
    ] = None,
    sender: Annotated[TextFilter, Query(description="From contains this (case-insensitive)")] = None,
    receivers: Annotated[
        TextFilter, Query(description="To, Cc or Bcc contains this (case-insensitive)")
    ] = None,
    subject: Annotated[TextFilter, Query(description="Subject contains this (case-insensitive)")] = None,
) -> dict[str, Any]:
    """Every message the mailbox keeps, received and sent, newest first, a page at a time.
    `since`/`until` bound the time (inclusive); `route` keeps the messages a route matched (a
    deleted route's matches stay browsable); `sender`, `receivers`, `subject` search those fields.
    `meta.total` is known only without filters."""
    query = mailtrigger.ArchiveQuery(
        since=since, until=until, route_id=route, sender=sender, receivers=receivers, subject=subject
    )
    archive = mailtrigger.archives(
        Table(), mailbox.item, query, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, archive.page, archive.views, per_page=page_query.per_page, total=archive.total
    )


# --- the processing log -------------------------------------------------------------------------------

LogReader = Annotated[LoadedMailbox, Depends(mailbox_for(AUTOMATION_READ, "messages:read"))]


@router.get(
    "/{mailbox_id}/logs",
    name="mailtrigger.mailbox.logs",
    response_model=ListOf[schemas.ProcessingLogEntry],
    response_model_by_alias=True,
    summary="The mailbox's processing log",
    responses=NOT_FOUND,
)
async def list_logs(
    request: Request,
    mailbox: LogReader,
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """One entry per message the mailbox's rules or routes looked at (and per test message),
    newest first, kept 30 days: the mailbox rules that matched, the routes, what each action did
    (status, attempts, duration, error), where the message went."""
    page = mailtrigger.log_page(Table(), mailbox.item, per_page=page_query.per_page, cursor=page_query.cursor)
    data = [mailtrigger.log_view(item, mailbox.item["id"]) for item in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=None)


@router.get(
    "/{mailbox_id}/logs/{log_id}",
    name="mailtrigger.mailbox.log",
    response_model=One[schemas.ProcessingLogEntry],
    response_model_by_alias=True,
    summary="One entry of the processing log",
    responses=errors(e404="not_found: no such mailbox, or no such entry in its log"),
)
async def get_log(log_id: LogId, mailbox: LogReader) -> dict[str, Any]:
    """The entry of one message: poll it after test mail until `automation_pending` is 0."""
    return one(mailtrigger.log_view(mailtrigger.get_log(Table(), mailbox.item, log_id), mailbox.item["id"]))


# --- test mail and sending ----------------------------------------------------------------------------


@router.post(
    "/{mailbox_id}/testmail",
    name="mailtrigger.mailbox.testmail",
    status_code=201,
    response_model=One[schemas.TestMailResult],
    response_model_by_alias=True,
    summary="Receive a test message through the inbound pipeline",
    responses={
        201: {
            "description": "Received and logged",
            "headers": {
                "Location": {
                    "description": "The log entry: /api/v1/mailbox/{mailbox_id}/logs/{log_id}",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        **NOT_FOUND,
        **errors(e422="validation_error (the field named), reserved_header"),
    },
)
async def send_testmail(
    request: Request,
    response: Response,
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_for(AUTOMATION_WRITE, "messages:write"))],
    body: schemas.TestMail | None = None,
) -> dict[str, Any]:
    """Build a test message (from, subject, text, html and extra headers, each with a default) and
    receive it in this mailbox through the real inbound pipeline, as SES would deliver it: the
    mailbox's rules and routes run, it is stored, and its log entry says what happened (marked
    `test`). Async actions (webhook, eventbridge, ...) run afterwards: poll the log entry until
    `automation_pending` is 0. A test message has no return path: nothing answers it."""
    _audit(request, mailbox)
    request_body = body.request() if body is not None else testmail.TestMessage()
    log = testmail.send_test(Table(), mailbox.item, request_body)
    view = mailtrigger.log_view(log, mailbox.item["id"])
    audit_target(request, "mailbox", mailbox.item["id"], address=mailbox.item["address"], log_id=view["id"])
    response.headers["Location"] = view["links"]["self"]
    return one(
        {"log_id": view["id"], "message_id": view["message_id"], "status": view["outcome"], "log": view}
    )


@router.post(
    "/{mailbox_id}/mail/send",
    name="mailtrigger.mailbox.send",
    status_code=201,
    response_model=One[SentView],
    response_model_exclude_unset=True,
    summary="Send a message through the mailbox",
    responses={
        201: SENT_201,
        **NOT_FOUND,
        **errors(
            e403="mailbox_inactive or mailbox_paused: this mailbox may not send now; domain_inactive",
            e422="validation_error (with the field), invalid_from, reserved_header, too_many_recipients, "
            "message_too_large, unknown_attachment, recipient_suppressed, mailbox_over_quota, send_rejected, "
            "unknown_identity, identity_not_allowed, unknown_template, template_variable_missing, "
            "tls_required; nothing was sent",
            e502="ses_unavailable: SES could not be reached; nothing was sent (retryable)",
            e503="send_throttled or sending_paused: SES refuses sends for now; nothing was sent",
        ),
    },
)
async def send_mail(
    body: SendMessageBody,
    request: Request,
    response: Response,
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_for("mailboxes:write", "messages:send"))],
) -> dict[str, Any]:
    """Send as the mailbox, exactly as `POST /api/v1/messages/send` does for its message token
    (the same body: recipients, text/html, attachments, identities, templates), and keep a Sent
    copy in the mailbox."""
    item = mailbox.item
    _audit(request, mailbox)
    sent = composing.send(Table(), item, body.to_request(), body.compose_options())
    audit_target(
        request, "message", sent.message_id, mailbox_id=item["id"], ses_message_id=sent.ses_message_id
    )
    response.headers["Location"] = f"/api/v1/messages/{sent.message_id}"
    return one(sent_view(sent.message, sent.ses_message_id))

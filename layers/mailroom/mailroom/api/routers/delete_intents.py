"""Delete intents: ``POST /api/v1/mailboxes/{id}:delete-intent`` (``mailbox_router``, served with
the mailboxes), ``POST /api/v1/delete-intents/{id}:confirm`` and ``GET /api/v1/delete-intents/{id}``
(``router``). See services/deletion.py for what a confirmation does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from mailroom.api.models import one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import deletion as service
from mailroom.services import mailboxes as mailbox_service
from mailroom.store import delete_intents as store
from mailroom.store.table import Table

mailbox_router = api_router("/api/v1/mailboxes", tags=["delete intents"])
router = api_router("/api/v1/delete-intents", tags=["delete intents"])
DELETE = require("mailboxes:delete")


@mailbox_router.post(
    "/{mailbox_id}:delete-intent",
    name="mailbox.delete_intent",
    status_code=201,
    summary="Start deleting a mailbox: an intent to confirm within 15 minutes",
)
async def create_delete_intent(
    mailbox_id: str, request: Request, principal: Annotated[Principal, Depends(DELETE)]
) -> dict[str, Any]:
    table = Table()
    mailbox = mailbox_service.load(table, principal.org_id, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"])
    intent = service.create_intent(table, principal, mailbox)
    audit_target(request, "delete_intent", intent["id"], mailbox_id=mailbox_id, address=mailbox["address"])
    return one(service.intent_view(intent))


@router.post(
    "/{intent_id}:confirm",
    name="delete_intent.confirm",
    summary="Delete the mailbox now; its stored mail is purged asynchronously",
)
async def confirm_delete_intent(
    intent_id: str, request: Request, principal: Annotated[Principal, Depends(DELETE)]
) -> dict[str, Any]:
    audit_target(request, "delete_intent", intent_id)
    confirmed = service.confirm(Table(), principal, intent_id)
    intent = confirmed.intent
    audit_target(
        request,
        "delete_intent",
        intent_id,
        mailbox_id=intent["mailbox_id"],
        address=intent["address"],
        revoked_message_tokens=confirmed.revoked_tokens,
    )
    view = service.intent_view(intent, confirmed.job)
    return one({**view, "mailbox_deleted": True})


@router.get("/{intent_id}", name="delete_intent.get", summary="A delete intent and the progress of its purge")
async def get_delete_intent(
    intent_id: str, principal: Annotated[Principal, Depends(require("mailboxes:read"))]
) -> dict[str, Any]:
    table = Table()
    intent = service.load_intent(table, principal.org_id, intent_id)
    job = (
        store.get_purge_job(table, principal.org_id, intent["mailbox_id"])
        if intent["status"] == "confirmed"
        else None
    )
    if job is not None and job.get("intent_id") != intent_id:
        job = None
    return one(service.intent_view(intent, job))

"""Delete intents: ``POST /api/v1/mailboxes/{id}:delete-intent`` (``mailbox_router``, served with
the mailboxes), ``POST /api/v1/delete-intents/{id}:confirm`` and ``GET /api/v1/delete-intents/{id}``
(``router``). See services/deletion.py for what a confirmation does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request

from mailroom.api.mailbox_lookup import NOT_FOUND, LoadedMailbox, mailbox_with
from mailroom.api.models import One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.delete_intents import ConfirmedIntent, IntentView
from mailroom.domain.principal import Principal
from mailroom.services import deletion as service
from mailroom.store.table import Table

mailbox_router = api_router("/api/v1/mailboxes", tags=["delete intents"])
router = api_router("/api/v1/delete-intents", tags=["delete intents"])
DELETE = "mailboxes:delete"
IntentId = Annotated[str, Path(max_length=64, description="The intent's id (dli_...)")]
INTENT_NOT_FOUND = errors(
    e404="not_found: no such delete intent in this organization (or its mailbox is gone)"
)


@mailbox_router.post(
    "/{mailbox_id}:delete-intent",
    name="mailbox.delete_intent",
    status_code=201,
    response_model=One[IntentView],
    summary="Start deleting a mailbox",
    responses={
        **NOT_FOUND,
        429: {
            "description": "rate_limited; delete_daily_limit_reached: this token has used its deletes "
            "for today (UTC); Retry-After says when"
        },
    },
)
async def create_delete_intent(
    request: Request, mailbox: Annotated[LoadedMailbox, Depends(mailbox_with(DELETE))]
) -> dict[str, Any]:
    """The first of two steps: an intent to delete the mailbox, valid 15 minutes. Nothing is deleted
    until it is confirmed at `confirm_path`. Deletes are limited per token and day, and a token must
    wait a cooldown between two deletes."""
    item = mailbox.item
    audit_target(request, "mailbox", item["id"], address=item["address"])
    intent = service.create_intent(Table(), mailbox.principal, item)
    audit_target(request, "delete_intent", intent["id"], mailbox_id=item["id"], address=item["address"])
    return one(service.intent_view(intent))


@router.post(
    "/{intent_id}:confirm",
    name="delete_intent.confirm",
    response_model=One[ConfirmedIntent],
    summary="Confirm: delete the mailbox now",
    responses={
        **INTENT_NOT_FOUND,
        **errors(
            e409="intent_already_confirmed: an intent is single use; concurrent_update: the mailbox kept "
            "changing (retry)",
            e410="intent_expired: create a new intent and confirm it within 15 minutes",
        ),
        429: {
            "description": "rate_limited; delete_daily_limit_reached or delete_cooldown: this token's "
            "deletes are used up for today or too close together; Retry-After says when"
        },
    },
)
async def confirm_delete_intent(
    intent_id: IntentId, request: Request, principal: Annotated[Principal, Depends(require(DELETE))]
) -> dict[str, Any]:
    """Delete the mailbox at once: its address is free and no mail reaches it from now on, its
    message tokens are revoked. Its stored mail is purged asynchronously (`purge` shows progress;
    read it again with `GET /delete-intents/{id}`)."""
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
    return one({**service.intent_view(intent, confirmed.job), "mailbox_deleted": True})


@router.get(
    "/{intent_id}",
    name="delete_intent.get",
    response_model=One[IntentView],
    summary="A delete intent and the progress of its purge",
    responses=INTENT_NOT_FOUND,
)
async def get_delete_intent(
    intent_id: IntentId, principal: Annotated[Principal, Depends(require("mailboxes:read"))]
) -> dict[str, Any]:
    """Whether the intent is pending, confirmed or expired; once confirmed, how far the purge of the
    mailbox's mail has gone."""
    intent, job = service.intent_with_purge(Table(), principal.org_id, intent_id)
    return one(service.intent_view(intent, job))

"""Mailboxes (``/api/v1/mailboxes``): create (one or a batch), read, update, password, note,
pause/resume and forwarding. Invites, message tokens and delete intents of a mailbox have their
own routers (served by the same function, since API Gateway routes ``/api/v1/mailboxes/{proxy+}``
here)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from mailroom.api import pagination
from mailroom.api.bulk import BULK_422, bulk_invalid
from mailroom.api.mailbox_lookup import (
    NOT_FOUND,
    LoadedMailbox,
    ReadableMailbox,
    WritableMailbox,
    mailbox_with,
)
from mailroom.api.models import DisplayName, Links, Meta, Note, One, Strict, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.mailboxes import (
    LIMIT_ERRORS,
    LOCAL_PART_PATTERN,
    LOCAL_PART_RULES,
    TLS_IN,
    TLS_OUT,
    ForwardingView,
    MailboxView,
    NewPassword,
    StorageAllocation,
)
from mailroom.domain.principal import Principal
from mailroom.services import forwarding
from mailroom.services import mailboxes as service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["mailboxes"])
MAX_BULK = 25  # two items per mailbox + counters must fit one 100-operation transaction


class CreateMailbox(Strict):
    """mailcow's mailbox fields, plus Mailroom's ``storage_allocation_mb`` and ``note``."""

    # The pattern is documented, not enforced here: the service refuses with its precise code.
    local_part: str = Field(
        min_length=1,
        max_length=64,
        json_schema_extra={"pattern": LOCAL_PART_PATTERN},
        description=LOCAL_PART_RULES,
    )
    domain: str = Field(min_length=1, max_length=300, description="A domain of this organization")
    password: NewPassword
    name: DisplayName | None = Field(default=None, max_length=255, description="Display name")
    quota: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="MB; defaults to the storage allocation, else the domain's defquota. At most the "
        "domain's maxquota (422 quota_exceeds_maxquota) and the allocation (quota_exceeds_allocation)",
    )
    active: bool = True
    force_pw_update: bool = Field(default=False, description="Sign-in refused until the password is changed")
    tls_enforce_in: bool = Field(default=False, description=TLS_IN)
    tls_enforce_out: bool = Field(default=False, description=TLS_OUT)
    storage_allocation_mb: StorageAllocation = None
    note: str | None = Field(default=None, max_length=2000)

    def request(self) -> service.NewMailbox:
        return service.NewMailbox(**self.model_dump())


class BulkCreate(Strict):
    mailboxes: list[CreateMailbox] = Field(min_length=1, max_length=MAX_BULK)


_NOT_NULL = ("quota", "active", "force_pw_update", "tls_enforce_in", "tls_enforce_out")


class UpdateMailbox(Strict):
    """The mailcow update fields: only those sent change. ``storage_allocation_mb: null`` moves a
    mailbox to the shared pool; ``name: null`` clears the name; the other fields cannot be null."""

    name: DisplayName | None = Field(default=None, max_length=255)
    quota: int | None = Field(
        default=None, ge=1, le=10_000_000, description="MB; at most the domain's maxquota and the allocation"
    )
    active: bool | None = None
    force_pw_update: bool | None = None
    tls_enforce_in: bool | None = Field(default=None, description=TLS_IN)
    tls_enforce_out: bool | None = Field(default=None, description=TLS_OUT)
    storage_allocation_mb: StorageAllocation = None

    @field_validator(*_NOT_NULL)
    @classmethod
    def not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields sent (defaults are not validated): an explicit null is refused.
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null")
        return value

    def fields(self) -> dict[str, Any]:
        """The plain attributes sent (quota and allocation move counters: the service does them)."""
        plain = ("name", "active", "force_pw_update", "tls_enforce_in", "tls_enforce_out")
        return {name: getattr(self, name) for name in plain if name in self.model_fields_set}


class ReplaceMailbox(Strict):
    """mailcow's mailbox update (PUT): the page's required fields (active, name, quota) must be
    sent; an optional field left out takes its default (force_pw_update, tls_enforce_in and
    tls_enforce_out false; storage_allocation_mb null: the shared pool). The create-only fields
    may be sent but must name this mailbox; the password has its own endpoint, the note and
    forwarding theirs (they are kept)."""

    active: bool
    name: DisplayName | None = Field(max_length=255, description="Display name; null clears it")
    quota: int = Field(
        ge=1, le=10_000_000, description="MB; at most the domain's maxquota and the allocation"
    )
    force_pw_update: bool = Field(default=False, description="Sign-in refused until the password is changed")
    tls_enforce_in: bool = Field(default=False, description=TLS_IN)
    tls_enforce_out: bool = Field(default=False, description=TLS_OUT)
    storage_allocation_mb: StorageAllocation = None
    domain: str | None = Field(default=None, max_length=300, description="Create-only: must be the mailbox's")
    local_part: str | None = Field(
        default=None, max_length=64, description="Create-only: must be the mailbox's"
    )

    def fields(self) -> dict[str, Any]:
        plain = ("name", "active", "force_pw_update", "tls_enforce_in", "tls_enforce_out")
        return {name: getattr(self, name) for name in plain}


class SetPassword(Strict):
    password: NewPassword
    force_pw_update: bool = Field(
        default=False, description="Require another change before the mailbox can sign in"
    )


class Pause(Strict):
    reason: str | None = Field(default=None, max_length=500, description="Shown with the mailbox")


class Forwarding(Strict):
    targets: list[Annotated[str, StringConstraints(max_length=320)]] = Field(
        max_length=forwarding.MAX_FORWARDING_TARGETS,
        description="Addresses; [] disables. A target on one of the organization's domains must be a "
        "mailbox or alias of it (422 unknown_target); the mailbox itself is refused (forwarding_loop).",
    )
    keep_copy: bool = Field(
        default=True,
        description="Also deliver to this mailbox. false with no targets is refused (forwarding_drops_mail)",
    )


class StoragePool(BaseModel):
    """The organization's storage pool (MB)."""

    total_mb: int = Field(description="limits.storage_mb")
    dedicated_mb: int = Field(description="Carved out for dedicated mailboxes")
    reserved_mb: int = Field(description="Held by pending dedicated invites")
    committed_mb: int = Field(description="dedicated_mb + reserved_mb")
    shared_mb: int = Field(description="What shared mailboxes draw on: total_mb - committed_mb")


class MailboxListMeta(Meta):
    storage_pool: StoragePool


class MailboxList(BaseModel):
    data: list[MailboxView]
    links: Links
    meta: MailboxListMeta


class CreatedCount(BaseModel):
    created: int


class CreatedMailboxes(BaseModel):
    data: list[MailboxView]
    meta: CreatedCount


def _audit(request: Request, mailbox: LoadedMailbox, **details: Any) -> None:
    audit_target(request, "mailbox", mailbox.item["id"], address=mailbox.item["address"], **details)


# --- routes -----------------------------------------------------------------------------------------


@router.get(
    "/mailboxes",
    name="mailbox.list",
    response_model=MailboxList,
    summary="List mailboxes",
    responses=errors(e404="not_found: domain_id names no domain of this organization"),
)
async def list_mailboxes(
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    domain_id: Annotated[
        str | None, Query(max_length=64, description="Only the mailboxes of this domain (dom_...)")
    ] = None,
) -> dict[str, Any]:
    """The organization's mailboxes (or one domain's), a page at a time; `meta.total` counts them and
    `meta.storage_pool` shows how the organization's storage is committed."""
    listing = service.list_mailboxes(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor, domain_id=domain_id
    )
    data = [service.mailbox_view(m) for m in listing.page.items]
    body = pagination.envelope(request, listing.page, data, per_page=page_query.per_page, total=listing.total)
    body["meta"]["storage_pool"] = listing.pool
    return body


@router.post(
    "/mailboxes",
    name="mailbox.create",
    status_code=201,
    response_model=One[MailboxView],
    summary="Create a mailbox",
    responses=errors(
        e409="address_taken: the address is a mailbox, alias or pending invite already",
        e422=LIMIT_ERRORS,
    ),
)
async def create_mailbox(
    body: CreateMailbox,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:create"))],
) -> dict[str, Any]:
    """Create a mailbox on one of the organization's domains, with its password. To let the owner
    choose the password, invite them instead (`POST /mailboxes/invites`)."""
    audit_target(request, "mailbox", "-", local_part=body.local_part, domain=body.domain)
    mailbox = service.create_mailbox(Table(), principal.org_id, body.request())
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    return one(service.mailbox_view(mailbox))


@router.post(
    "/mailboxes:bulk",
    name="mailbox.bulk_create",
    status_code=201,
    response_model=CreatedMailboxes,
    summary=f"Create up to {MAX_BULK} mailboxes: all of them or none",
    responses={
        **errors(e409="address_taken: an address was taken after validation (nothing created)"),
        **BULK_422,
    },
)
async def bulk_create(
    body: BulkCreate, request: Request, principal: Annotated[Principal, Depends(require("mailboxes:create"))]
) -> Any:
    """Every row is validated (as for one mailbox, plus duplicates within the batch); if any is bad,
    nothing is created and the 422 lists every row. Otherwise all are created in one transaction,
    with every limit checked for the batch as a whole."""
    addresses = [f"{row.local_part}@{row.domain}" for row in body.mailboxes]
    audit_target(request, "mailbox_batch", f"{len(addresses)} rows", addresses=addresses)
    outcome = service.create_batch(Table(), principal.org_id, [row.request() for row in body.mailboxes])
    if outcome.created is None:
        return bulk_invalid(request, outcome.rows, what="mailbox")
    created = [service.mailbox_view(m) for m in outcome.created]
    return {"data": created, "meta": {"created": len(created)}}


@router.get(
    "/mailboxes/{mailbox_id}",
    name="mailbox.get",
    response_model=One[MailboxView],
    summary="Get a mailbox",
    responses=NOT_FOUND,
)
async def get_mailbox(mailbox: ReadableMailbox) -> dict[str, Any]:
    """A mailbox with its quota, usage, storage mode, flags and forwarding."""
    return one(service.mailbox_view(mailbox.item))


@router.patch(
    "/mailboxes/{mailbox_id}",
    name="mailbox.update",
    response_model=One[MailboxView],
    summary="Update name, quota, flags and storage allocation",
    responses={
        **NOT_FOUND,
        **errors(
            e409="concurrent_update: the mailbox changed meanwhile (retry)",
            e422="validation_error, quota_exceeds_maxquota, quota_exceeds_allocation, domain_quota_exceeded, "
            "storage_pool_exceeded",
        ),
    },
)
async def update_mailbox(body: UpdateMailbox, request: Request, mailbox: WritableMailbox) -> dict[str, Any]:
    """Change the fields sent. A new quota or allocation moves the domain's quota and the storage
    pool with it, atomically."""
    given = body.model_fields_set
    _audit(request, mailbox, fields=sorted(given))
    kwargs: dict[str, Any] = {}
    if "storage_allocation_mb" in given:
        kwargs["allocation"] = body.storage_allocation_mb
    updated = service.update_mailbox(Table(), mailbox.item, fields=body.fields(), quota=body.quota, **kwargs)
    return one(service.mailbox_view(updated))


@router.put(
    "/mailboxes/{mailbox_id}",
    name="mailbox.replace",
    response_model=One[MailboxView],
    summary="Replace name, quota, flags and storage allocation (mailcow's full update)",
    responses={
        **NOT_FOUND,
        **errors(
            e409="concurrent_update: the mailbox changed meanwhile (retry)",
            e422="validation_error: a required field is missing or a create-only field names another "
            "mailbox (`fields`); quota_exceeds_maxquota, quota_exceeds_allocation, domain_quota_exceeded, "
            "storage_pool_exceeded",
        ),
    },
)
async def replace_mailbox(body: ReplaceMailbox, request: Request, mailbox: WritableMailbox) -> dict[str, Any]:
    """mailcow's `PUT /mailboxes/{email}`: the mailbox as a whole. Send active, name and quota;
    optional fields left out take their defaults. The path takes the address or the id. A new quota
    or allocation moves the domain's quota and the storage pool with it, atomically."""
    _audit(request, mailbox, fields=sorted(body.model_fields_set))
    service.check_same_address(mailbox.item, domain=body.domain, local_part=body.local_part)
    updated = service.update_mailbox(
        Table(), mailbox.item, fields=body.fields(), quota=body.quota, allocation=body.storage_allocation_mb
    )
    return one(service.mailbox_view(updated))


@router.post(
    "/mailboxes/{mailbox_id}/password",
    name="mailbox.set_password",
    response_model=One[MailboxView],
    summary="Set the mailbox's password",
    responses={**NOT_FOUND, **errors(e422="weak_password: see the password rules; validation_error")},
)
async def set_password(body: SetPassword, request: Request, mailbox: WritableMailbox) -> dict[str, Any]:
    """Set a new password; the mailbox's sign-in tokens (from `POST /auth/mailbox-token`) are revoked,
    its managed message tokens are not."""
    _audit(request, mailbox)
    updated, revoked = service.set_password(
        Table(), mailbox.item, body.password, force_pw_update=body.force_pw_update
    )
    _audit(request, mailbox, revoked_sign_in_tokens=revoked)
    return one(service.mailbox_view(updated))


@router.patch(
    "/mailboxes/{mailbox_id}/note",
    name="mailbox.note",
    response_model=One[MailboxView],
    summary="Set the note",
    responses=NOT_FOUND,
)
async def set_note(body: Note, request: Request, mailbox: WritableMailbox) -> dict[str, Any]:
    """Replace the operators' note on the mailbox (null clears it)."""
    _audit(request, mailbox)
    return one(service.mailbox_view(service.set_fields(Table(), mailbox.item, {"note": body.note})))


@router.post(
    "/mailboxes/{mailbox_id}:pause",
    name="mailbox.pause",
    response_model=One[MailboxView],
    summary="Pause sending",
    responses=NOT_FOUND,
)
async def pause(request: Request, mailbox: WritableMailbox, body: Pause | None = None) -> dict[str, Any]:
    """The mailbox keeps receiving but cannot send (403 mailbox_paused) until resumed. Pausing a
    paused mailbox changes nothing (it keeps when and why it was paused)."""
    _audit(request, mailbox)
    return one(service.mailbox_view(service.pause(Table(), mailbox.item, body.reason if body else None)))


@router.post(
    "/mailboxes/{mailbox_id}:resume",
    name="mailbox.resume",
    response_model=One[MailboxView],
    summary="Resume a paused mailbox",
    responses=NOT_FOUND,
)
async def resume(request: Request, mailbox: WritableMailbox) -> dict[str, Any]:
    """The mailbox can send again."""
    _audit(request, mailbox)
    return one(service.mailbox_view(service.resume(Table(), mailbox.item)))


@router.get(
    "/mailboxes/{mailbox_id}/forwarding",
    name="mailbox.forwarding.get",
    response_model=One[ForwardingView],
    summary="Where the mailbox's mail is forwarded",
    responses=NOT_FOUND,
)
async def get_forwarding(
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_with("mailboxes:forwarding:read"))],
) -> dict[str, Any]:
    """The forwarding targets and whether the mailbox keeps a copy."""
    return one(forwarding.forwarding_view(mailbox.item.get("forwarding") or {}))


@router.put(
    "/mailboxes/{mailbox_id}/forwarding",
    name="mailbox.forwarding.set",
    response_model=One[ForwardingView],
    summary="Set forwarding targets",
    responses={
        **NOT_FOUND,
        **errors(
            e422="invalid_forwarding_target, unknown_target, forwarding_loop, too_many_targets, "
            "forwarding_drops_mail, validation_error"
        ),
    },
)
async def set_forwarding(
    body: Forwarding,
    request: Request,
    mailbox: Annotated[LoadedMailbox, Depends(mailbox_with("mailboxes:forwarding:write"))],
) -> dict[str, Any]:
    """Replace the forwarding targets ([] turns forwarding off) and whether to keep a copy."""
    _audit(request, mailbox, targets=body.targets)
    forwarded = forwarding.set_forwarding(Table(), mailbox.item, body.targets, keep_copy=body.keep_copy)
    return one(forwarding.forwarding_view(forwarded))

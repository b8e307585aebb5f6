"""Mailboxes (``/api/v1/mailboxes``): create (one or a batch), read, update, password, note,
pause/resume and forwarding. Invites, message tokens and delete intents of a mailbox have their
own routers (served by the same function, since API Gateway routes ``/api/v1/mailboxes/{proxy+}``
here)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from mailroom import clock, errors
from mailroom.api import pagination
from mailroom.api.models import DisplayName, One, Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.errors import MailroomError
from mailroom.services import mailboxes as service
from mailroom.store import domains
from mailroom.store import mailboxes as store
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["mailboxes"])
MAX_BULK = 25  # two items per mailbox + counters must fit one 100-operation transaction

# Passwords are taken byte for byte: the models' whitespace stripping must not apply to them.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)]
StorageAllocation = Annotated[
    int | None,
    Field(
        ge=1,
        le=100_000_000,
        description="MB carved out of the organization's storage pool for this mailbox alone; "
        "omit or null for the shared pool (default).",
    ),
]


class CreateMailbox(Strict):
    """mailcow's mailbox fields, plus Mailroom's ``storage_allocation_mb`` and ``note``."""

    local_part: str = Field(min_length=1, max_length=64, description="a-zA-Z0-9._%+-")
    domain: str = Field(min_length=1, max_length=300, description="A domain of this organization")
    password: Password = Field(description="10-256 characters, two character classes at least")
    name: DisplayName | None = Field(default=None, max_length=255, description="Display name")
    quota: int | None = Field(
        default=None, ge=1, le=10_000_000, description="MB; defaults to the domain's defquota"
    )
    active: bool = True
    force_pw_update: bool = Field(default=False, description="Sign-in refused until the password is changed")
    tls_enforce_in: bool = False
    tls_enforce_out: bool = False
    storage_allocation_mb: StorageAllocation = None
    note: str | None = Field(default=None, max_length=2000)

    def request(self) -> service.NewMailbox:
        return service.NewMailbox(**self.model_dump())


class BulkCreate(Strict):
    mailboxes: list[CreateMailbox] = Field(min_length=1, max_length=MAX_BULK)


class UpdateMailbox(Strict):
    """The mailcow update fields; ``storage_allocation_mb: null`` moves a mailbox to the shared pool."""

    name: DisplayName | None = Field(default=None, max_length=255)
    quota: int | None = Field(default=None, ge=1, le=10_000_000)
    active: bool | None = None
    force_pw_update: bool | None = None
    tls_enforce_in: bool | None = None
    tls_enforce_out: bool | None = None
    storage_allocation_mb: StorageAllocation = None


class SetPassword(Strict):
    password: Password
    force_pw_update: bool = Field(
        default=False, description="Require another change before the mailbox can sign in"
    )


class Note(Strict):
    note: str | None = Field(max_length=2000)


class Pause(Strict):
    reason: str | None = Field(default=None, max_length=500)


class Forwarding(Strict):
    targets: list[str] = Field(
        max_length=service.MAX_FORWARDING_TARGETS, description="Addresses; [] disables"
    )
    keep_copy: bool = Field(default=True, description="Also deliver to this mailbox")


class ForwardingView(BaseModel):
    enabled: bool
    targets: list[str]
    keep_copy: bool
    updated_at: str | None


class MailboxView(BaseModel):
    id: str
    address: str
    local_part: str
    domain: str
    domain_id: str
    name: str | None
    quota: int
    used_bytes: int
    active: bool
    paused: bool
    paused_at: str | None
    pause_reason: str | None
    note: str | None
    storage_allocation_mb: int | None
    storage_mode: str
    force_pw_update: bool
    tls_enforce_in: bool
    tls_enforce_out: bool
    forwarding: ForwardingView
    message_token_count: int
    created_via: str
    invite_id: str | None
    password_updated_at: str | None
    created_at: str
    updated_at: str


def _load(table: Table, principal: Principal, mailbox_id: str) -> Item:
    return service.load(table, principal.org_id, mailbox_id)


@router.get("/mailboxes", name="mailbox.list", summary="List mailboxes (optionally of one domain)")
async def list_mailboxes(
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
    domain_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    table = Table()
    org = service.load_org(table, principal.org_id)
    total = int(org.get("mailbox_count", 0))
    if domain_id is not None:
        domain = domains.get(table, principal.org_id, domain_id)
        if domain is None:
            raise errors.not_found("Domain")
        total = int(domain.get("mailbox_count", 0))
    page = store.list_page(
        table,
        principal.org_id,
        per_page=page_query.per_page,
        cursor=page_query.cursor,
        domain_id=domain_id,
    )
    body = pagination.envelope(
        request,
        page,
        [service.mailbox_view(m) for m in page.items],
        per_page=page_query.per_page,
        total=total,
    )
    body["meta"]["storage_pool"] = service.pool_view(org)
    return body


@router.post(
    "/mailboxes",
    name="mailbox.create",
    status_code=201,
    response_model=One[MailboxView],
    summary="Create a mailbox on a domain of the organization",
)
async def create_mailbox(
    body: CreateMailbox,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:create"))],
) -> dict[str, Any]:
    audit_target(request, "mailbox", "-", local_part=body.local_part, domain=body.domain)
    mailbox = service.create_mailbox(Table(), principal.org_id, body.request())
    audit_target(request, "mailbox", mailbox["id"], address=mailbox["address"])
    return one(service.mailbox_view(mailbox))


@router.post(
    "/mailboxes:bulk",
    name="mailbox.bulk_create",
    status_code=201,
    summary=f"Create up to {MAX_BULK} mailboxes: all of them or none",
)
async def bulk_create(
    body: BulkCreate, request: Request, principal: Annotated[Principal, Depends(require("mailboxes:create"))]
) -> JSONResponse:
    table = Table()
    cache: dict[str, Item | None] = {}
    rows: list[dict[str, Any]] = []
    prepared: list[service.Prepared] = []
    seen: set[str] = set()
    for index, row in enumerate(body.mailboxes):
        error: dict[str, str] | None = None
        address = f"{row.local_part}@{row.domain}"
        try:
            ready = service.prepare_mailbox(table, principal.org_id, row.request(), cache=cache)
            address = ready.address
            if address in seen:
                error = {"code": "duplicate_row", "message": f"{address} appears more than once in the batch"}
            elif service.address_owner(table, principal.org_id, address) is not None:
                error = {"code": "address_taken", "message": f"{address} is already in use"}
            prepared.append(ready)
            seen.add(address)
        except MailroomError as exc:
            error = {"code": exc.code, "message": exc.message}
        rows.append(
            {"index": index, "address": address, "status": "invalid" if error else "valid", "error": error}
        )
    audit_target(request, "mailbox_batch", f"{len(rows)} rows", addresses=[r["address"] for r in rows])
    invalid = [r for r in rows if r["error"]]
    if invalid:
        return bulk_invalid(request, rows, invalid, what="mailbox")
    created = service.write_mailboxes(table, service.load_org(table, principal.org_id), prepared)
    return JSONResponse(
        status_code=201,
        content={"data": [service.mailbox_view(m) for m in created], "meta": {"created": len(created)}},
    )


def bulk_invalid(
    request: Request, rows: list[dict[str, Any]], invalid: list[dict[str, Any]], *, what: str
) -> JSONResponse:
    """422 naming every bad row; nothing was created (the same shape as domains:bulk-add)."""
    request.state.error_code = "bulk_validation_failed"
    return JSONResponse(
        status_code=422,
        content={
            "error": {
                "code": "bulk_validation_failed",
                "message": f"{len(invalid)} of {len(rows)} rows are invalid; no {what} was created.",
                "hint": "Fix or remove the rows listed in 'rows' and send the batch again.",
                "request_id": request.state.request_id,
                "retryable": False,
                "rows": rows,
            }
        },
    )


@router.get(
    "/mailboxes/{mailbox_id}", name="mailbox.get", response_model=One[MailboxView], summary="Get a mailbox"
)
async def get_mailbox(
    mailbox_id: str, principal: Annotated[Principal, Depends(require("mailboxes:read"))]
) -> dict[str, Any]:
    return one(service.mailbox_view(_load(Table(), principal, mailbox_id)))


@router.patch(
    "/mailboxes/{mailbox_id}",
    name="mailbox.update",
    response_model=One[MailboxView],
    summary="Update name, quota, active (and the other mailcow fields, storage allocation)",
)
async def update_mailbox(
    mailbox_id: str,
    body: UpdateMailbox,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:write"))],
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, mailbox_id)
    given = body.model_fields_set
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"], fields=sorted(given))
    fields: dict[str, Any] = {}
    if "name" in given:
        fields["name"] = body.name
    for flag in ("active", "force_pw_update", "tls_enforce_in", "tls_enforce_out"):
        if flag in given:
            value = getattr(body, flag)
            if value is None:
                raise errors.validation(f"{flag} cannot be null", field=flag)
            fields[flag] = value
    if "quota" in given and body.quota is None:
        raise errors.validation("quota cannot be null", field="quota")
    kwargs: dict[str, Any] = {}
    if "storage_allocation_mb" in given:
        kwargs["allocation"] = body.storage_allocation_mb
    updated = service.update_mailbox(table, mailbox, fields=fields, quota=body.quota, **kwargs)
    return one(service.mailbox_view(updated))


@router.post(
    "/mailboxes/{mailbox_id}/password",
    name="mailbox.set_password",
    response_model=One[MailboxView],
    summary="Set the mailbox's password (revokes its sign-in tokens)",
)
async def set_password(
    mailbox_id: str,
    body: SetPassword,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:write"))],
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"])
    updated, revoked = service.set_password(
        table, mailbox, body.password, force_pw_update=body.force_pw_update
    )
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"], revoked_sign_in_tokens=revoked)
    return one(service.mailbox_view(updated))


@router.patch(
    "/mailboxes/{mailbox_id}/note",
    name="mailbox.note",
    response_model=One[MailboxView],
    summary="Set the note",
)
async def set_note(
    mailbox_id: str,
    body: Note,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:write"))],
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"])
    return one(service.mailbox_view(service.set_fields(table, mailbox, {"note": body.note})))


@router.post(
    "/mailboxes/{mailbox_id}:pause",
    name="mailbox.pause",
    response_model=One[MailboxView],
    summary="Pause: the mailbox cannot send (403 mailbox_paused) until resumed",
)
async def pause(
    mailbox_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:write"))],
    body: Pause | None = None,
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"])
    if mailbox.get("paused"):
        return one(service.mailbox_view(mailbox))  # already paused: keep when and why it was
    fields = {"paused": True, "paused_at": clock.now_iso(), "pause_reason": body.reason if body else None}
    return one(service.mailbox_view(service.set_fields(table, mailbox, fields)))


@router.post(
    "/mailboxes/{mailbox_id}:resume",
    name="mailbox.resume",
    response_model=One[MailboxView],
    summary="Resume a paused mailbox",
)
async def resume(
    mailbox_id: str, request: Request, principal: Annotated[Principal, Depends(require("mailboxes:write"))]
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"])
    fields = {"paused": False, "paused_at": None, "pause_reason": None}
    return one(service.mailbox_view(service.set_fields(table, mailbox, fields)))


@router.get(
    "/mailboxes/{mailbox_id}/forwarding",
    name="mailbox.forwarding.get",
    response_model=One[ForwardingView],
    summary="Where the mailbox's mail is forwarded",
)
async def get_forwarding(
    mailbox_id: str, principal: Annotated[Principal, Depends(require("mailboxes:forwarding:read"))]
) -> dict[str, Any]:
    mailbox = _load(Table(), principal, mailbox_id)
    return one(service.forwarding_view(mailbox.get("forwarding") or {}))


@router.put(
    "/mailboxes/{mailbox_id}/forwarding",
    name="mailbox.forwarding.set",
    response_model=One[ForwardingView],
    summary="Set forwarding targets (and whether to keep a copy); [] turns forwarding off",
)
async def set_forwarding(
    mailbox_id: str,
    body: Forwarding,
    request: Request,
    principal: Annotated[Principal, Depends(require("mailboxes:forwarding:write"))],
) -> dict[str, Any]:
    table = Table()
    mailbox = _load(table, principal, mailbox_id)
    audit_target(request, "mailbox", mailbox_id, address=mailbox["address"], targets=body.targets)
    targets = service.validate_forwarding(table, mailbox, body.targets)
    if not targets and not body.keep_copy:
        raise errors.validation(
            "keep_copy false with no targets would drop every message",
            field="keep_copy",
            code="forwarding_drops_mail",
        )
    forwarding = {
        "targets": targets,
        "keep_copy": body.keep_copy or not targets,
        "updated_at": clock.now_iso(),
    }
    updated = service.set_fields(table, mailbox, {"forwarding": forwarding})
    return one(service.forwarding_view(updated["forwarding"]))

"""Hosted domains, their DNS records, verification checks and spam metrics (``/api/v1/domains``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from mailroom import clock, errors
from mailroom.api import pagination
from mailroom.api.models import Strict, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.domain.principal import Principal
from mailroom.errors import LimitReached, MailroomError
from mailroom.services import domains as service
from mailroom.store import addresses, domain_metrics, organizations
from mailroom.store import domains as store
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["domains"])
MAX_BULK = 50
_LOCAL_PART_RE = re.compile(r"^[a-zA-Z0-9._%+-]{1,64}$")


class DomainLimits(Strict):
    """The mailcow domain limits (MB for quotas)."""

    mailboxes: int | None = Field(default=None, ge=0, le=1_000_000, description="Max mailboxes")
    aliases: int | None = Field(default=None, ge=0, le=1_000_000, description="Max aliases")
    defquota: int | None = Field(default=None, ge=1, le=10_000_000, description="Default mailbox quota (MB)")
    maxquota: int | None = Field(default=None, ge=1, le=10_000_000, description="Max mailbox quota (MB)")
    quota: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Total quota of the domain (MB)"
    )

    def given(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


def _check_quotas(limits: dict[str, int]) -> None:
    merged = {**service.DEFAULT_LIMITS, **limits}
    if merged["defquota"] > merged["maxquota"]:
        raise ValueError("defquota cannot exceed maxquota")
    if merged["maxquota"] > merged["quota"]:
        raise ValueError("maxquota cannot exceed quota")


class CreateDomain(DomainLimits):
    domain: str = Field(min_length=1, max_length=300, description="e.g. example.com; IDN accepted")
    active: bool = True
    description: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=2000)
    feedback_enabled: bool = True
    backupmx: bool = Field(default=False, description="Backup MX is not supported; must be false")

    @field_validator("domain")
    @classmethod
    def valid_name(cls, value: str) -> str:
        try:
            return normalize_domain(value)
        except InvalidDomainName as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("backupmx")
    @classmethod
    def no_backup_mx(cls, value: bool) -> bool:
        if value:
            raise ValueError("Mailroom receives through SES; it cannot act as a backup MX")
        return value

    @model_validator(mode="after")
    def quotas_consistent(self) -> CreateDomain:
        _check_quotas(self.given())
        return self

    def limit_fields(self) -> dict[str, int]:
        return {k: v for k, v in self.given().items() if k in service.DEFAULT_LIMITS}


class UpdateDomain(DomainLimits):
    active: bool | None = None
    description: str | None = Field(default=None, max_length=500)
    feedback_enabled: bool | None = None


class BulkAdd(Strict):
    domains: list[CreateDomain] = Field(min_length=1, max_length=MAX_BULK)


class CatchAll(Strict):
    catch_all: str | None = Field(
        description="Address that receives mail for unknown recipients; null disables"
    )


class Note(Strict):
    note: str | None = Field(max_length=2000)


class DnsRecord(BaseModel):
    type: str
    name: str
    value: str
    priority: int | None
    status: str
    found: list[str]
    purpose: str


class DomainView(BaseModel):
    id: str
    domain: str
    domain_unicode: str
    status: str
    active: bool
    description: str | None
    note: str | None
    catch_all: str | None
    feedback_enabled: bool
    mailboxes: int
    aliases: int
    defquota: int
    maxquota: int
    quota: int
    mailbox_count: int
    alias_count: int
    dkim_selector: str
    mail_from_domain: str
    verified_at: str | None
    last_checked_at: str | None
    next_check_at: str | None
    created_at: str
    updated_at: str


def _load(table: Table, principal: Principal, domain_id: str) -> Item:
    domain = store.get(table, principal.org_id, domain_id)
    # The platform domain's item only counts the organization's inboxes on it: the domain is the
    # operator's, so it is none of the organization's domains to read, change or delete.
    if domain is None or domain.get("platform"):
        raise errors.not_found("Domain")
    return domain


def _org_limits(table: Table, principal: Principal) -> tuple[Item, int]:
    org = organizations.get(table, principal.org_id) or {}
    return org, int((org.get("limits") or {}).get("domains", 10))


def _create(table: Table, principal: Principal, body: CreateDomain) -> Item:
    return service.add_domain(
        table,
        principal.org_id,
        service.NewDomain(
            domain=body.domain,
            active=body.active,
            description=body.description,
            note=body.note,
            feedback_enabled=body.feedback_enabled,
            limits=body.limit_fields(),
        ),
    )


@router.get("/domains", name="domain.list", summary="List domains")
async def list_domains(
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    table = Table()
    page = store.list_page(table, principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor)
    org, _ = _org_limits(table, principal)
    return pagination.envelope(
        request,
        page,
        [service.domain_view(d) for d in page.items],
        per_page=page_query.per_page,
        total=int(org.get("domain_count", 0)),
    )


@router.post(
    "/domains",
    name="domain.create",
    status_code=201,
    summary="Add a domain (returns it; records at dns-requirements)",
)
async def create_domain(
    body: CreateDomain, request: Request, principal: Annotated[Principal, Depends(require("domains:create"))]
) -> dict[str, Any]:
    domain = _create(Table(), principal, body)
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    return one({**service.domain_view(domain), "dns_records": service.records_view(domain)})


@router.post(
    "/domains:bulk-add", name="domain.bulk_add", summary="Add up to 50 domains, validated as a whole"
)
async def bulk_add(
    body: BulkAdd, request: Request, principal: Annotated[Principal, Depends(require("domains:create"))]
) -> JSONResponse:
    table = Table()
    org, limit = _org_limits(table, principal)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, row in enumerate(body.domains):
        error = None
        if row.domain in seen:
            error = {"code": "duplicate_row", "message": f"{row.domain} appears more than once in the batch"}
        else:
            claim = store.claim_of(table, row.domain)
            if claim is not None:
                code = "domain_exists" if claim["org_id"] == principal.org_id else "domain_taken"
                error = {"code": code, "message": f"{row.domain} is already hosted"}
        seen.add(row.domain)
        rows.append(
            {"index": index, "domain": row.domain, "status": "invalid" if error else "valid", "error": error}
        )
    invalid = [r for r in rows if r["error"]]
    free = limit - int(org.get("domain_count", 0))
    if not invalid and len(rows) > free:
        raise LimitReached(
            "domain_limit_reached",
            f"The batch needs {len(rows)} domains; the organization has room for {max(free, 0)}.",
        )
    audit_target(request, "domain_batch", f"{len(rows)} rows", domains=[r["domain"] for r in rows])
    if invalid:
        # Nothing is created when any row is bad: the client fixes the batch and sends it again.
        return JSONResponse(
            status_code=422,
            content={
                "error": {
                    "code": "bulk_validation_failed",
                    "message": f"{len(invalid)} of {len(rows)} rows are invalid; no domain was created.",
                    "hint": "Fix or remove the rows listed in 'rows' and send the batch again.",
                    "request_id": request.state.request_id,
                    "retryable": False,
                    "rows": rows,
                }
            },
        )
    created = 0
    for result, request_row in zip(rows, body.domains, strict=True):
        try:
            domain = _create(table, principal, request_row)
        except MailroomError as exc:  # a race with another request since validation
            result.update(status="failed", error={"code": exc.code, "message": exc.message})
            continue
        created += 1
        result.update(status="created", data=service.domain_view(domain))
    status = 201 if created == len(rows) else 207
    return JSONResponse(
        status_code=status,
        content={"data": rows, "meta": {"created": created, "failed": len(rows) - created}},
    )


@router.get("/domains/{domain_id}", name="domain.get", summary="Get a domain")
async def get_domain(
    domain_id: str, principal: Annotated[Principal, Depends(require("domains:read"))]
) -> dict[str, Any]:
    return one(service.domain_view(_load(Table(), principal, domain_id)))


@router.patch("/domains/{domain_id}", name="domain.update", summary="Update active, description and limits")
async def update_domain(
    domain_id: str,
    body: UpdateDomain,
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:write"))],
) -> dict[str, Any]:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain_id, domain=domain["domain"])
    limits = {**service.DEFAULT_LIMITS, **(domain.get("limits") or {}), **body.given()}
    try:
        _check_quotas(limits)
    except ValueError as exc:
        raise errors.validation(str(exc), field="quota") from exc
    if limits["mailboxes"] < int(domain.get("mailbox_count", 0)):
        raise errors.validation(
            "mailboxes cannot go below the number of mailboxes the domain has", field="mailboxes"
        )
    if limits["quota"] < int(domain.get("quota_allocated_mb", 0)):
        raise errors.validation(
            "quota cannot go below the sum of the quotas of the domain's mailboxes", field="quota"
        )
    if limits["aliases"] < int(domain.get("alias_count", 0)):
        raise errors.validation(
            "aliases cannot go below the number of aliases the domain has", field="aliases"
        )
    fields: dict[str, Any] = {"limits": limits, "updated_at": clock.now_iso()}
    for name in ("active", "description", "feedback_enabled"):
        if name in body.model_fields_set:
            fields[name] = getattr(body, name)
    return one(service.domain_view(store.update(table, principal.org_id, domain_id, fields)))


@router.delete(
    "/domains/{domain_id}", name="domain.delete", status_code=204, summary="Delete an empty domain"
)
async def delete_domain(
    domain_id: str, request: Request, principal: Annotated[Principal, Depends(require("domains:delete"))]
) -> Response:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain_id, domain=domain["domain"])
    service.remove_domain(table, domain)
    return Response(status_code=204)


@router.get(
    "/domains/{domain_id}/dns-requirements",
    name="domain.dns_requirements",
    summary="The DNS records the domain needs, with their last checked status",
)
async def dns_requirements(
    domain_id: str, principal: Annotated[Principal, Depends(require("domains:dns:read"))]
) -> dict[str, Any]:
    domain = _load(Table(), principal, domain_id)
    return one(
        {
            "domain_id": domain["id"],
            "domain": domain["domain"],
            "status": domain["status"],
            "last_checked_at": domain.get("last_checked_at"),
            "records": service.records_view(domain),
        }
    )


@router.post(
    "/domains/{domain_id}/dns-recheck",
    name="domain.dns_recheck",
    status_code=201,
    summary="Check the domain's DNS now; the check is kept at /dns-checks/{id}",
)
async def dns_recheck(
    domain_id: str, request: Request, principal: Annotated[Principal, Depends(require("domains:dns:recheck"))]
) -> dict[str, Any]:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain_id, domain=domain["domain"])
    return one(_check_view(service.run_check(table, domain)))


@router.get("/dns-checks/{check_id}", name="dns_check.get", summary="A DNS check and its per-record result")
async def get_dns_check(
    check_id: str, principal: Annotated[Principal, Depends(require("domains:dns:read"))]
) -> dict[str, Any]:
    check = store.get_check(Table(), principal.org_id, check_id)
    if check is None:
        raise errors.not_found("DNS check")
    return one(_check_view(check))


def _check_view(check: Item) -> dict[str, Any]:
    return {
        k: check.get(k)
        for k in (
            "id",
            "domain_id",
            "domain",
            "trigger",
            "status",
            "result",
            "records",
            "errors",
            "started_at",
            "completed_at",
        )
    }


@router.patch("/domains/{domain_id}/catch-all", name="domain.catch_all", summary="Set or clear the catch-all")
async def set_catch_all(
    domain_id: str,
    body: CatchAll,
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:write"))],
) -> dict[str, Any]:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain_id, domain=domain["domain"], catch_all=body.catch_all)
    target = None
    if body.catch_all is not None:
        target = _valid_address(body.catch_all)
        target_domain = target.rpartition("@")[2]
        # A target on one of our own domains must exist, or mail would loop into the void.
        if (
            store.get_by_name(table, principal.org_id, target_domain) is not None
            and addresses.resolve(table, principal.org_id, target) is None
        ):
            raise errors.validation(
                f"{target} is not a mailbox or alias of this organization",
                field="catch_all",
                code="unknown_target",
            )
    updated = store.update(
        table, principal.org_id, domain_id, {"catch_all": target, "updated_at": clock.now_iso()}
    )
    return one(service.domain_view(updated))


def _valid_address(raw: str) -> str:
    local, at, host = raw.strip().rpartition("@")
    if not at or not _LOCAL_PART_RE.match(local):
        raise errors.validation(
            "catch_all must be an email address (local part a-zA-Z0-9._%+-)", field="catch_all"
        )
    try:
        return f"{local}@{normalize_domain(host)}"
    except InvalidDomainName as exc:
        raise errors.validation(f"catch_all domain: {exc}", field="catch_all") from exc


@router.patch("/domains/{domain_id}/note", name="domain.note", summary="Set the domain's note")
async def set_note(
    domain_id: str,
    body: Note,
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:write"))],
) -> dict[str, Any]:
    table = Table()
    _load(table, principal, domain_id)
    audit_target(request, "domain", domain_id)
    updated = store.update(
        table, principal.org_id, domain_id, {"note": body.note, "updated_at": clock.now_iso()}
    )
    return one(service.domain_view(updated))


@router.post(
    "/domains/{domain_id}/dkim:retry",
    name="domain.dkim_rotate",
    summary="Rotate the DKIM key (new selector; publish the new record)",
)
async def dkim_retry(
    domain_id: str, request: Request, principal: Annotated[Principal, Depends(require("domains:write"))]
) -> dict[str, Any]:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain_id, domain=domain["domain"])
    updated = service.rotate_dkim(table, domain)
    return one({**service.domain_view(updated), "dns_records": service.records_view(updated)})


@router.get("/domains/{domain_id}/spam-metrics", name="domain.spam_metrics", summary="Daily mail counters")
async def spam_metrics(
    domain_id: str,
    principal: Annotated[Principal, Depends(require("domains:read"))],
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> dict[str, Any]:
    table = Table()
    _load(table, principal, domain_id)
    first, last = service.window_days(days)
    return {
        "data": domain_metrics.days(table, principal.org_id, domain_id, first_day=first, last_day=last),
        "meta": {"from": first, "to": last, "days": days},
    }


@router.get(
    "/domains/{domain_id}/spam-metrics/summary",
    name="domain.spam_metrics_summary",
    summary="Totals and rates over a window",
)
async def spam_metrics_summary(
    domain_id: str,
    principal: Annotated[Principal, Depends(require("domains:read"))],
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> dict[str, Any]:
    table = Table()
    _load(table, principal, domain_id)
    first, last = service.window_days(days)
    daily = domain_metrics.days(table, principal.org_id, domain_id, first_day=first, last_day=last)
    return one({"from": first, "to": last, "days": days, **service.spam_summary(daily)})

"""Hosted domains, their DNS records, verification checks and spam metrics (``/api/v1/domains``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from mailroom.api import pagination
from mailroom.api.bulk import BULK_422, RowError, bulk_invalid
from mailroom.api.models import ListOf, Note, One, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.domains import (
    MAX_BULK,
    BulkAdd,
    CatchAll,
    CreateDomain,
    ReplaceDomain,
    UpdateDomain,
)
from mailroom.domain.principal import Principal
from mailroom.services import domains as service
from mailroom.store.table import Item, Table

router = api_router("/api/v1", tags=["domains"])
RecordStatus = Literal["MISSING", "VALID", "INVALID"]


class DnsRecord(BaseModel):
    type: Literal["MX", "TXT"]
    name: str
    value: str = Field(description="What to publish")
    priority: int | None = Field(description="MX preference; null for TXT")
    status: RecordStatus = Field(
        description="VALID: DNS has it; INVALID: DNS has something else (see found); MISSING: nothing there"
    )
    found: list[str] = Field(description="With INVALID: the values DNS returned instead")
    purpose: Literal["inbound_mx", "mail_from_mx", "spf", "dkim", "dmarc"]


DomainStatus = Literal["pending", "verified", "failed"]


class DomainView(BaseModel):
    id: str
    domain: str = Field(description="Stored form: lower case, punycode")
    domain_unicode: str
    status: DomainStatus = Field(
        description="pending until every record is VALID (verified); failed when a record is INVALID or "
        "the records are still missing 72 hours after creation"
    )
    active: bool
    description: str | None
    note: str | None
    catch_all: str | None
    feedback_enabled: bool
    mailboxes: int = Field(description="Limit: max mailboxes")
    aliases: int = Field(description="Limit: max aliases")
    defquota: int = Field(description="Limit: default mailbox quota, MB")
    maxquota: int = Field(description="Limit: max mailbox quota, MB")
    quota: int = Field(description="Limit: total of the mailbox quotas, MB")
    mailbox_count: int
    alias_count: int
    dkim_selector: str
    mail_from_domain: str
    verified_at: Timestamp | None
    last_checked_at: Timestamp | None
    next_check_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class DomainWithRecords(DomainView):
    dns_records: list[DnsRecord] = Field(description="The records to publish (as at dns-requirements)")


class BulkAddedRow(BaseModel):
    index: int = Field(ge=0)
    domain: str
    status: Literal["created", "failed"] = Field(
        description="failed: a concurrent request took the name or the organization's last free slot"
    )
    error: RowError | None
    data: DomainView | None = Field(default=None, description="The domain, when created")


class BulkAddMeta(BaseModel):
    created: int
    failed: int


class BulkAdded(BaseModel):
    data: list[BulkAddedRow]
    meta: BulkAddMeta


class DnsRequirements(BaseModel):
    domain_id: str
    domain: str
    status: DomainStatus
    last_checked_at: Timestamp | None
    records: list[DnsRecord]


class DnsCheck(BaseModel):
    id: str
    domain_id: str
    domain: str
    trigger: Literal["api", "schedule"]
    status: Literal["completed"]
    result: DomainStatus = Field(description="The domain's status this check concluded")
    records: list[DnsRecord]
    errors: dict[str, str] = Field(description='Lookups that failed, by "TYPE name" (timeouts, SERVFAIL)')
    started_at: Timestamp
    completed_at: Timestamp


class DailyMetrics(BaseModel):
    date: str = Field(json_schema_extra={"format": "date"})
    inbound_total: int
    inbound_spam: int
    inbound_virus: int
    inbound_dropped: int = Field(description="Recipients whose copy was dropped (unknown, blocked, ...)")
    outbound_total: int
    outbound_bounces: int
    outbound_complaints: int


class MetricsWindow(BaseModel):
    from_: str = Field(alias="from", json_schema_extra={"format": "date"})
    to: str = Field(json_schema_extra={"format": "date"})
    days: int


class DailyMetricsList(BaseModel):
    data: list[DailyMetrics] = Field(description="Days with traffic, oldest first; quiet days are absent")
    meta: MetricsWindow


class MetricsSummary(BaseModel):
    from_: str = Field(alias="from", json_schema_extra={"format": "date"})
    to: str = Field(json_schema_extra={"format": "date"})
    days: int
    inbound_total: int
    inbound_spam: int
    inbound_virus: int
    inbound_dropped: int
    outbound_total: int
    outbound_bounces: int
    outbound_complaints: int
    spam_rate: float = Field(ge=0, le=1, description="inbound_spam / inbound_total (0 without traffic)")
    virus_rate: float = Field(ge=0, le=1)
    bounce_rate: float = Field(ge=0, le=1, description="outbound_bounces / outbound_total")
    complaint_rate: float = Field(ge=0, le=1)


# --- loading a domain -------------------------------------------------------------------------------

DomainId = Annotated[
    str,
    Path(
        max_length=300,
        description="The domain's id (dom_...) or its name (example.com, any case, unicode or punycode), "
        "as mailcow's /domains/{domain}",
    ),
]
NOT_FOUND = errors(e404="not_found: no such domain in this organization")
Days = Annotated[int, Query(ge=1, le=365, description="Window in days, today (UTC) included")]


@dataclass(frozen=True, slots=True)
class LoadedDomain:
    principal: Principal
    item: Item


def _domain_with(scope: str) -> Callable[[Request, str], LoadedDomain]:
    """A dependency: the caller (a token with ``scope``) and the domain the path names."""
    authorized = require(scope)

    def load(request: Request, domain_id: DomainId) -> LoadedDomain:
        principal = authorized(request)
        return LoadedDomain(principal, service.load_domain(Table(), principal.org_id, domain_id))

    return load


ReadableDomain = Annotated[LoadedDomain, Depends(_domain_with("domains:read"))]
WritableDomain = Annotated[LoadedDomain, Depends(_domain_with("domains:write"))]
DeletableDomain = Annotated[LoadedDomain, Depends(_domain_with("domains:delete"))]
DnsReadableDomain = Annotated[LoadedDomain, Depends(_domain_with("domains:dns:read"))]
RecheckableDomain = Annotated[LoadedDomain, Depends(_domain_with("domains:dns:recheck"))]


def _with_records(domain: Item) -> dict[str, Any]:
    return {**service.domain_view(domain), "dns_records": service.records_view(domain)}


# --- routes -----------------------------------------------------------------------------------------


@router.get(
    "/domains",
    name="domain.list",
    response_model=ListOf[DomainView],
    summary="List domains",
)
async def list_domains(
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:read"))],
    page_query: Annotated[pagination.PageQuery, Depends(pagination.page_query)],
) -> dict[str, Any]:
    """The organization's domains in creation order, a page at a time; `meta.total` is how many
    it has. Follow `links.next` for the next page."""
    page, total = service.list_domains(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    data = [service.domain_view(d) for d in page.items]
    return pagination.envelope(request, page, data, per_page=page_query.per_page, total=total)


@router.post(
    "/domains",
    name="domain.create",
    status_code=201,
    response_model=One[DomainWithRecords],
    summary="Add a domain",
    responses=errors(
        e409="domain_exists: the organization has this domain already; domain_taken: another organization "
        "hosts it; concurrent_update: the organization's limit changed meanwhile (retry)",
        e422="validation_error: see `fields`; domain_limit_reached: the organization has as many domains "
        "as its limit allows",
    ),
)
async def create_domain(
    body: CreateDomain, request: Request, principal: Annotated[Principal, Depends(require("domains:create"))]
) -> dict[str, Any]:
    """Start hosting mail for a domain. It is `pending` until the DNS records in `dns_records` are
    published and a check finds them (`POST /domains/{id}/dns-recheck`, or the scheduled recheck);
    Mailroom generates its DKIM key. Mailboxes and aliases can be created at once."""
    audit_target(request, "domain", "-", domain=body.domain)
    domain = service.add_domain(Table(), principal.org_id, body.request())
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    return one(_with_records(domain))


@router.post(
    "/domains:bulk-add",
    name="domain.bulk_add",
    status_code=201,
    response_model=BulkAdded,
    summary=f"Add up to {MAX_BULK} domains, validated as a whole",
    responses={
        207: {
            "model": BulkAdded,
            "description": "Some rows failed (a concurrent request took the name or the last free slot "
            "after validation); the others were created. Each row says which.",
        },
        **BULK_422,
    },
)
async def bulk_add(
    body: BulkAdd,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require("domains:create"))],
) -> Any:
    """Validate every row first (duplicates in the batch, names already hosted, the organization's
    domain limit for the whole batch): if any row is bad, nothing is created and the 422 lists
    every row. Otherwise each domain is created; 201 when all were, 207 when some failed."""
    requests = [row.request() for row in body.domains]
    audit_target(request, "domain_batch", f"{len(requests)} rows", domains=[r.domain for r in requests])
    table = Table()
    rows = service.validate_batch(table, principal.org_id, requests)
    if any(row.status == "invalid" for row in rows):
        return bulk_invalid(request, [row.view() for row in rows], what="domain")
    created = service.add_batch(table, principal.org_id, requests, rows)
    if created < len(rows):
        response.status_code = 207
    return {"data": [row.view() for row in rows], "meta": {"created": created, "failed": len(rows) - created}}


@router.get(
    "/domains/{domain_id}",
    name="domain.get",
    response_model=One[DomainView],
    summary="Get a domain",
    responses=NOT_FOUND,
)
async def get_domain(domain: ReadableDomain) -> dict[str, Any]:
    """A domain with its verification status, limits and counts."""
    return one(service.domain_view(domain.item))


@router.patch(
    "/domains/{domain_id}",
    name="domain.update",
    response_model=One[DomainView],
    summary="Update active, description, feedback and limits",
    responses={
        **NOT_FOUND,
        **errors(
            e409="concurrent_update: the domain changed meanwhile (retry)",
            e422="validation_error: a limit below what the domain uses, or inconsistent quotas (`fields`)",
        ),
    },
)
async def update_domain(body: UpdateDomain, request: Request, domain: WritableDomain) -> dict[str, Any]:
    """Change the fields sent. Raising or lowering `mailboxes`, `aliases` or `quota` never goes
    below what the domain already uses."""
    audit_target(request, "domain", domain.item["id"], domain=domain.item["domain"])
    updated = service.update_domain(Table(), domain.item, limits=body.given(), fields=body.fields())
    return one(service.domain_view(updated))


@router.put(
    "/domains/{domain_id}",
    name="domain.replace",
    response_model=One[DomainView],
    summary="Replace active, description and limits (mailcow's full update)",
    responses={
        **NOT_FOUND,
        **errors(
            e409="concurrent_update: the domain changed meanwhile (retry)",
            e422="validation_error: a required field is missing, the body names another domain, a limit "
            "is below what the domain uses, or the quotas are inconsistent (`fields`)",
        ),
    },
)
async def replace_domain(body: ReplaceDomain, request: Request, domain: WritableDomain) -> dict[str, Any]:
    """mailcow's `PUT /domains/{domain}`: the domain as a whole. Send every required field (domain,
    active, aliases, defquota, mailboxes, maxquota, quota); optional ones left out take their
    defaults. The path takes the domain's name or its id. `active: false` stops the domain's mail
    both ways and refuses new mailboxes, aliases and invites on it."""
    audit_target(request, "domain", domain.item["id"], domain=domain.item["domain"])
    if body.domain != domain.item["domain"]:
        raise service.renamed(domain.item["domain"])
    updated = service.update_domain(Table(), domain.item, limits=body.limits(), fields=body.fields())
    return one(service.domain_view(updated))


@router.delete(
    "/domains/{domain_id}",
    name="domain.delete",
    status_code=204,
    summary="Delete an empty domain",
    responses={
        **NOT_FOUND,
        **errors(e409="domain_not_empty: it still has mailboxes, aliases or pending invites"),
    },
)
async def delete_domain(request: Request, domain: DeletableDomain) -> Response:
    """Stop hosting a domain that has no mailboxes, aliases or pending invites left; its name is free
    again for any organization."""
    audit_target(request, "domain", domain.item["id"], domain=domain.item["domain"])
    service.remove_domain(Table(), domain.item)
    return Response(status_code=204)


@router.get(
    "/domains/{domain_id}/dns-requirements",
    name="domain.dns_requirements",
    response_model=One[DnsRequirements],
    summary="The DNS records the domain needs",
    responses=NOT_FOUND,
)
async def dns_requirements(domain: DnsReadableDomain) -> dict[str, Any]:
    """Every record to publish (MX, SPF, DKIM, DMARC, MAIL FROM), each with its status at the last
    check (MISSING before the first one)."""
    item = domain.item
    return one(
        {
            "domain_id": item["id"],
            "domain": item["domain"],
            "status": item["status"],
            "last_checked_at": item.get("last_checked_at"),
            "records": service.records_view(item),
        }
    )


@router.post(
    "/domains/{domain_id}/dns-recheck",
    name="domain.dns_recheck",
    status_code=201,
    response_model=One[DnsCheck],
    summary="Check the domain's DNS now",
    responses=NOT_FOUND,
)
async def dns_recheck(request: Request, domain: RecheckableDomain) -> dict[str, Any]:
    """Look every required record up now and update the domain's status; the check is kept (30
    days) at `GET /dns-checks/{id}`. Use it after publishing the records instead of waiting for the
    scheduled recheck."""
    audit_target(request, "domain", domain.item["id"], domain=domain.item["domain"])
    return one(service.check_view(service.run_check(Table(), domain.item)))


@router.get(
    "/dns-checks/{check_id}",
    name="dns_check.get",
    response_model=One[DnsCheck],
    summary="A DNS check and its per-record result",
    responses=errors(e404="not_found: no such check in this organization (checks are kept 30 days)"),
)
async def get_dns_check(
    check_id: Annotated[str, Path(max_length=64, description="The check's id (chk_...)")],
    principal: Annotated[Principal, Depends(require("domains:dns:read"))],
) -> dict[str, Any]:
    """One DNS check as it ran: what each record looked like and what the domain's status became."""
    return one(service.check_view(service.load_check(Table(), principal.org_id, check_id)))


@router.patch(
    "/domains/{domain_id}/catch-all",
    name="domain.catch_all",
    response_model=One[DomainView],
    summary="Set or clear the catch-all",
    responses={
        **NOT_FOUND,
        **errors(
            e422="validation_error: not an address; unknown_target: an address on "
            "one of the organization's domains that is no mailbox or alias"
        ),
    },
)
async def set_catch_all(body: CatchAll, request: Request, domain: WritableDomain) -> dict[str, Any]:
    """Deliver mail for unknown recipients of the domain to one address instead of bouncing it."""
    item = domain.item
    audit_target(request, "domain", item["id"], domain=item["domain"], catch_all=body.catch_all)
    return one(service.domain_view(service.set_catch_all(Table(), item, body.catch_all)))


@router.patch(
    "/domains/{domain_id}/note",
    name="domain.note",
    response_model=One[DomainView],
    summary="Set the domain's note",
    responses=NOT_FOUND,
)
async def set_note(body: Note, request: Request, domain: WritableDomain) -> dict[str, Any]:
    """Replace the operators' note on the domain (null clears it)."""
    audit_target(request, "domain", domain.item["id"])
    return one(service.domain_view(service.set_note(Table(), domain.item, body.note)))


@router.post(
    "/domains/{domain_id}/dkim:retry",
    name="domain.dkim_rotate",
    response_model=One[DomainWithRecords],
    summary="Rotate the DKIM key",
    responses=NOT_FOUND,
)
async def dkim_retry(request: Request, domain: WritableDomain) -> dict[str, Any]:
    """Generate a new DKIM key under a new selector and give it to SES; publish the new DKIM record
    from `dns_records` (the old one can be removed once the new one is VALID)."""
    audit_target(request, "domain", domain.item["id"], domain=domain.item["domain"])
    return one(_with_records(service.rotate_dkim(Table(), domain.item)))


@router.get(
    "/domains/{domain_id}/spam-metrics",
    name="domain.spam_metrics",
    response_model=DailyMetricsList,
    response_model_by_alias=True,
    summary="Daily mail counters",
    responses=NOT_FOUND,
)
async def spam_metrics(domain: ReadableDomain, days: Days = 30) -> dict[str, Any]:
    """Per day: mail received (and how much was spam, a virus or dropped), mail sent (and its bounces
    and complaints)."""
    window = service.spam_metrics(Table(), domain.item, days)
    return {"data": window.days, "meta": {"from": window.first_day, "to": window.last_day, "days": days}}


@router.get(
    "/domains/{domain_id}/spam-metrics/summary",
    name="domain.spam_metrics_summary",
    response_model=One[MetricsSummary],
    response_model_by_alias=True,
    summary="Totals and rates over a window",
    responses=NOT_FOUND,
)
async def spam_metrics_summary(domain: ReadableDomain, days: Days = 30) -> dict[str, Any]:
    """The window's totals and its spam, virus, bounce and complaint rates (0 without traffic)."""
    window = service.spam_metrics(Table(), domain.item, days)
    summary = service.spam_summary(window.days)
    return one({"from": window.first_day, "to": window.last_day, "days": days, **summary})

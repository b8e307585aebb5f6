"""``/api/v0/domains``: custom domains, their DNS records and verification (agentmail-v0-api.txt).

The same domains as ``/api/v1/domains`` (services/domains.py: BYODKIM identity in SES, records,
the DNS check through ``MAILROOM_DNS_RESOLVER``), shown the v0 way:

* ``domain_id`` is the domain name (v0 has no other id for a domain);
* ``status`` is ``VERIFIED`` or ``PENDING`` (v1's ``failed`` is not verified: ``PENDING``);
* ``records`` are the records to publish, each ``{type, name, value, status, priority}`` with
  ``status`` ``VALID`` or ``MISSING`` (v1's ``INVALID``, something else published there, is a
  required record that is still missing). Mailroom sends through SES, so the records are SES's:
  MX for receiving, MX and SPF on the ``bounce.`` MAIL FROM domain, the DKIM key and DMARC.

Scopes, for v1 ops tokens used here: those of the same v1 action (reading a domain shows its
records, so it takes ``domains:read`` and ``domains:dns:read``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field, field_validator

from mailroom import errors
from mailroom.api.models import Strict
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.domain.principal import Principal
from mailroom.services import domains as service
from mailroom.store import domains as store
from mailroom.store import organizations
from mailroom.store.table import Item, Table

router = api_router("/api/v0/domains", tags=["v0 domains"])
Pages = Annotated[PageParams, Depends(page_params)]
Reader = Annotated[Principal, Depends(require("domains:read", "domains:dns:read"))]
DomainId = Annotated[str, Path(alias="domainId", description="The domain name")]


class CreateDomain(Strict):
    domain: str = Field(min_length=1, max_length=300, description="e.g. yourdomain.com; IDN accepted")
    feedback_enabled: bool = True

    @field_validator("domain")
    @classmethod
    def valid_name(cls, value: str) -> str:
        return normalize_domain(value)  # InvalidDomainName is a ValueError: 422 on this field


class DnsRecord(BaseModel):
    type: str
    name: str
    value: str
    status: Literal["MISSING", "VALID"]
    priority: int | None


class Domain(BaseModel):
    domain_id: str
    status: Literal["PENDING", "VERIFIED"]
    feedback_enabled: bool
    records: list[DnsRecord]
    created_at: str
    updated_at: str


def domain_view(domain: Item) -> dict[str, Any]:
    return {
        "domain_id": domain["domain"],
        "status": "VERIFIED" if domain["status"] == "verified" else "PENDING",
        "feedback_enabled": bool(domain.get("feedback_enabled", True)),
        "records": [
            {
                "type": record["type"],
                "name": record["name"],
                "value": record["value"],
                "status": "VALID" if record["status"] == "VALID" else "MISSING",
                "priority": record["priority"],
            }
            for record in service.records_view(domain)
        ],
        "created_at": domain["created_at"],
        "updated_at": domain["updated_at"],
    }


def _load(table: Table, principal: Principal, domain_id: str) -> Item:
    try:
        name = normalize_domain(domain_id)
    except InvalidDomainName:
        name = None  # not a name any domain could have
    domain = store.get_by_name(table, principal.org_id, name) if name else None
    if domain is None:
        raise errors.not_found("Domain")
    return domain


@router.post("", name="v0.domain.create", response_model=Domain, summary="Add a custom domain")
async def create_domain(
    body: CreateDomain, request: Request, principal: Annotated[Principal, Depends(require("domains:create"))]
) -> dict[str, Any]:
    domain = service.add_domain(
        Table(),
        principal.org_id,
        service.NewDomain(domain=body.domain, feedback_enabled=body.feedback_enabled),
    )
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    return domain_view(domain)


@router.get(
    "", name="v0.domain.list", response_model=PageOf[Domain], summary="List domains with their records"
)
async def list_domains(principal: Reader, params: Pages) -> dict[str, Any]:
    table = Table()
    items = store.window(table, principal.org_id, offset=params.offset, limit=params.page_size)
    org = organizations.get(table, principal.org_id) or {}
    return page_body([domain_view(d) for d in items], total=int(org.get("domain_count", 0)), params=params)


@router.get(
    "/{domainId}", name="v0.domain.get", response_model=Domain, summary="Get a domain with its records"
)
async def get_domain(domain_id: DomainId, principal: Reader) -> dict[str, Any]:
    return domain_view(_load(Table(), principal, domain_id))


@router.delete("/{domainId}", name="v0.domain.delete", status_code=204, summary="Delete a domain")
async def delete_domain(
    domain_id: DomainId, request: Request, principal: Annotated[Principal, Depends(require("domains:delete"))]
) -> Response:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    service.remove_domain(table, domain)
    return Response(status_code=204)


@router.post(
    "/{domainId}/verify",
    name="v0.domain.verify",
    response_model=Domain,
    summary="Check the domain's DNS records now; VERIFIED once all are valid",
)
async def verify_domain(
    domain_id: DomainId,
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:dns:recheck"))],
) -> dict[str, Any]:
    table = Table()
    domain = _load(table, principal, domain_id)
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    service.run_check(table, domain)
    return domain_view(store.get(table, principal.org_id, domain["id"]) or domain)

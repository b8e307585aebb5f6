"""``/api/v0/domains``: custom domains, their DNS records and verification (agentmail-v0-api.txt;
services/v0_domains.py): the same domains as ``/api/v1/domains``, shown the v0 way.

Scopes, for v1 ops tokens used here: those of the same v1 action (reading a domain shows its
records, so it takes ``domains:read`` and ``domains:dns:read``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, Field, field_validator

from mailroom.api.models import Strict, Timestamp, errors
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.v0_pages import PageOf, PageParams, page_body, page_params
from mailroom.domain.domain_names import normalize_domain
from mailroom.domain.principal import Principal
from mailroom.services import v0_domains as service
from mailroom.store.table import Item, Table

router = api_router("/api/v0/domains", tags=["v0 domains"])
Pages = Annotated[PageParams, Depends(page_params)]
READ_SCOPES = ("domains:read", "domains:dns:read")
Reader = Annotated[Principal, Depends(require(*READ_SCOPES))]
DomainId = Annotated[
    str, Path(alias="domainId", description="The domain name (its domain_id); any case, unicode or punycode")
]
NOT_FOUND = "not_found: no such domain in this organization (the platform domain is not one)"


class V0CreateDomain(Strict):
    domain: str = Field(
        min_length=1,
        max_length=300,
        description="A DNS name with at least two labels, e.g. yourdomain.com; internationalized names "
        "are accepted and stored in punycode. Checked by the server (422 naming `domain` otherwise).",
        examples=["yourdomain.com"],
    )
    feedback_enabled: bool = Field(default=True, description="Receive bounce and complaint feedback")

    @field_validator("domain")
    @classmethod
    def valid_name(cls, value: str) -> str:
        return normalize_domain(value)  # InvalidDomainName is a ValueError: 422 on this field


class V0DnsRecord(BaseModel):
    type: Literal["MX", "TXT"]
    name: str = Field(examples=["yourdomain.com"])
    value: str
    status: Literal["MISSING", "VALID"] = Field(description="VALID once the DNS check found it as required")
    priority: int | None = Field(description="MX priority; null for TXT")


class V0Domain(BaseModel):
    domain_id: str = Field(description="The domain name", examples=["yourdomain.com"])
    status: Literal["PENDING", "VERIFIED"] = Field(description="VERIFIED once every record is VALID")
    feedback_enabled: bool
    records: list[V0DnsRecord] = Field(
        description="What to publish: MX for receiving, MX and SPF on the bounce. MAIL FROM domain, the "
        "DKIM key, DMARC"
    )
    created_at: Timestamp
    updated_at: Timestamp


def _readable(principal: Reader, domain_id: DomainId) -> Item:
    return service.load_domain(Table(), principal.org_id, domain_id)


def _deletable(
    principal: Annotated[Principal, Depends(require("domains:delete"))], domain_id: DomainId
) -> Item:
    return service.load_domain(Table(), principal.org_id, domain_id)


def _checkable(
    principal: Annotated[Principal, Depends(require("domains:dns:recheck"))], domain_id: DomainId
) -> Item:
    return service.load_domain(Table(), principal.org_id, domain_id)


# The domain named in the path, for a caller holding the scopes of the action.
ReadableDomain = Annotated[Item, Depends(_readable)]
DeletableDomain = Annotated[Item, Depends(_deletable)]
CheckableDomain = Annotated[Item, Depends(_checkable)]


@router.post(
    "",
    name="v0.domain.create",
    response_model=V0Domain,
    summary="Add a custom domain",
    responses=errors(
        e409="domain_exists: already a domain of this organization; domain_taken: hosted by another",
        e422="validation_error: not a valid domain name; domain_limit_reached: the organization has "
        "its maximum of domains",
    ),
)
async def create_domain(
    body: V0CreateDomain,
    request: Request,
    principal: Annotated[Principal, Depends(require("domains:create"))],
) -> dict[str, Any]:
    """Add a domain for inboxes of your own. Returns it PENDING with the DNS records to publish at
    your DNS provider; then call verify (Mailroom also rechecks on a schedule)."""
    domain = service.create_domain(
        Table(), principal.org_id, body.domain, feedback_enabled=body.feedback_enabled
    )
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    return service.domain_view(domain)


@router.get("", name="v0.domain.list", response_model=PageOf[V0Domain], summary="List domains")
async def list_domains(principal: Reader, params: Pages) -> dict[str, Any]:
    """The organization's domains in creation order, with their records and verification status,
    a numbered page at a time."""
    data, total = service.list_domains(
        Table(), principal.org_id, offset=params.offset, limit=params.page_size
    )
    return page_body(data, total=total, params=params)


@router.get(
    "/{domainId}",
    name="v0.domain.get",
    response_model=V0Domain,
    summary="Get a domain",
    responses=errors(e404=NOT_FOUND),
)
async def get_domain(domain: ReadableDomain) -> dict[str, Any]:
    """One domain with its records and their last known status."""
    return service.domain_view(domain)


@router.delete(
    "/{domainId}",
    name="v0.domain.delete",
    status_code=204,
    response_class=Response,
    summary="Delete a domain",
    responses=errors(
        e404=NOT_FOUND,
        e409="domain_not_empty: it still has inboxes (mailboxes), aliases or pending invites",
    ),
)
async def delete_domain(domain: DeletableDomain, request: Request) -> Response:
    """Remove the domain and its sending identity. Delete its inboxes first. Returns 204 No Content."""
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    service.delete_domain(Table(), domain)
    return Response(status_code=204)


@router.post(
    "/{domainId}/verify",
    name="v0.domain.verify",
    response_model=V0Domain,
    summary="Verify a domain's DNS records now",
    responses=errors(e404=NOT_FOUND),
)
async def verify_domain(domain: CheckableDomain, request: Request) -> dict[str, Any]:
    """Look every required record up now and store each one's status. The domain becomes VERIFIED
    (and a `domain.verified` webhook event is sent) once all are VALID; until then it stays PENDING.
    Returns the domain as it is after the check."""
    audit_target(request, "domain", domain["id"], domain=domain["domain"])
    return service.domain_view(service.verify_domain(Table(), domain))

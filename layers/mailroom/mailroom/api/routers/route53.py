"""DNS set-up through Route 53 (``/api/v1/route53``): list hosted zones, connect a domain to one,
preview and apply the records it needs. docs/dns-providers.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from mailroom.api.models import One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.dns_setup import (
    ApplyBody,
    ApplyResult,
    ConnectionView,
    PreviewBody,
    PreviewView,
    Route53Connect,
    Route53ZonesBody,
    ZoneList,
)
from mailroom.domain.principal import Principal
from mailroom.services import dns_setup
from mailroom.services import domains as domain_service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["route53"])
Reader = Annotated[Principal, Depends(require("route53:read"))]
Writer = Annotated[Principal, Depends(require("route53:write"))]

UPSTREAM = errors(
    e502="provider_error: Route 53 refused the request",
    e503="provider_unavailable: Route 53 is unavailable (retry)",
)
ROLE_422 = (
    "role_arn_required: the stack does not share its own account's zones; route53_role_refused: the role "
    "could not be assumed; validation_error"
)


@router.post(
    "/route53/zones",
    name="route53.zones",
    response_model=ZoneList,
    summary="List Route 53 hosted zones",
    responses={**UPSTREAM, **errors(e422=ROLE_422)},
)
async def list_zones(body: Route53ZonesBody, principal: Reader) -> dict[str, Any]:
    """The hosted zones of the account the role belongs to (or of the stack's own account), with
    their ids for `connect`; `name` for one."""
    zones = dns_setup.route53_zones(principal.org_id, body.role_arn)
    return {"data": dns_setup.list_zones(zones, name=body.name)}


@router.post(
    "/route53/connect",
    name="route53.connect",
    status_code=201,
    response_model=One[ConnectionView],
    summary="Connect a domain to a Route 53 hosted zone",
    responses={
        **UPSTREAM,
        **errors(
            e404="not_found: no such domain",
            e422=f"{ROLE_422}; zone_not_found; zone_mismatch: the zone does not hold the domain",
        ),
    },
)
async def connect(body: Route53Connect, request: Request, principal: Writer) -> dict[str, Any]:
    """Connect the domain to the public hosted zone that holds it, for `preview` and `apply`;
    connecting again replaces the domain's connection."""
    table = Table()
    audit_target(request, "domain", body.domain_id, provider="route53", zone_id=body.zone_id)
    domain = domain_service.load_domain(table, principal.org_id, body.domain_id)
    zones = dns_setup.route53_zones(principal.org_id, body.role_arn)
    connection = dns_setup.connect(table, domain, zones, body.zone_id, role_arn=body.role_arn)
    return one(dns_setup.connection_view(connection))


@router.post(
    "/route53/preview",
    name="route53.preview",
    status_code=201,
    response_model=One[PreviewView],
    summary="Preview the DNS changes for a domain",
    responses={
        **UPSTREAM,
        **errors(
            e404="not_found: no such domain",
            e409="not_connected: the domain is not connected to Route 53",
            e422=ROLE_422 + "; zone_not_found",
        ),
    },
)
async def preview(body: PreviewBody, request: Request, principal: Reader) -> dict[str, Any]:
    """Compare the records the domain needs with the hosted zone's and keep the change set (15
    minutes): records to create, to update (an SPF include merged into the existing `v=spf1`
    record), already correct, and conflicts left alone (another MX set unless `replace_mx`)."""
    table = Table()
    audit_target(request, "domain", body.domain_id, provider="route53", replace_mx=body.replace_mx)
    domain = domain_service.load_domain(table, principal.org_id, body.domain_id)
    return one(
        dns_setup.preview_view(dns_setup.preview(table, domain, "route53", replace_mx=body.replace_mx))
    )


@router.post(
    "/route53/apply",
    name="route53.apply",
    response_model=One[ApplyResult],
    summary="Apply a preview's DNS changes",
    responses={
        **UPSTREAM,
        **errors(
            e404="not_found: no such preview (or domain)",
            e409="zone_changed: the zone's records changed since the preview; preview_outdated; "
            "not_connected",
            e410="preview_expired: preview again",
            e422=ROLE_422 + "; zone_not_found",
        ),
    },
)
async def apply(body: ApplyBody, request: Request, principal: Writer) -> dict[str, Any]:
    """Make exactly the previewed changes in one atomic change batch (refused by Route 53 if the
    zone changed meanwhile), then check the domain's DNS. Applying the same preview again answers
    the same result and changes nothing."""
    audit_target(request, "dns_preview", body.preview_id, provider="route53")
    return one(dns_setup.apply(Table(), principal.org_id, "route53", body.preview_id))

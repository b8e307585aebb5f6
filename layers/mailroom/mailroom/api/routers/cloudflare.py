"""DNS set-up through Cloudflare (``/api/v1/cloudflare``): check a token, list its zones, connect a
domain to a zone, preview and apply the records it needs; stored tokens. docs/dns-providers.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response

from mailroom.api import pagination
from mailroom.api.models import ListOf, One, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.api.schemas.dns_setup import (
    ApplyBody,
    ApplyResult,
    CloudflareConnect,
    CloudflareZonesBody,
    ConnectionView,
    PreviewBody,
    PreviewView,
    StoredToken,
    TokenBody,
    TokenValidation,
    ZoneList,
)
from mailroom.domain.principal import Principal
from mailroom.services import cloudflare_tokens, dns_setup
from mailroom.services import domains as domain_service
from mailroom.store.table import Table

router = api_router("/api/v1", tags=["cloudflare"])
Reader = Annotated[Principal, Depends(require("cloudflare:read"))]
Writer = Annotated[Principal, Depends(require("cloudflare:write"))]
Deleter = Annotated[Principal, Depends(require("cloudflare:delete"))]
PageParams = Annotated[pagination.PageQuery, Depends(pagination.page_query)]

UPSTREAM = {
    **errors(
        e502="provider_error: Cloudflare refused the request for a reason of its own",
        e503="provider_unavailable: Cloudflare is unreachable, slow or rate-limiting (retry)",
    )
}
TOKEN_422 = "cloudflare_token_invalid: Cloudflare refused the token or it is not active; validation_error"  # noqa: S105 - an error description


@router.post(
    "/cloudflare/validate-token",
    name="cloudflare.validate_token",
    response_model=One[TokenValidation],
    summary="Check a Cloudflare API token",
    responses=UPSTREAM,
)
async def validate_token(body: TokenBody, principal: Reader) -> dict[str, Any]:
    """Ask Cloudflare whether the token is valid and active (`valid`), without storing it. A token
    Cloudflare does not know answers `valid: false, status: invalid`."""
    return one(cloudflare_tokens.validate(body.token))


@router.post(
    "/cloudflare/zones",
    name="cloudflare.zones",
    response_model=ZoneList,
    summary="List the zones a Cloudflare token can see",
    responses={**UPSTREAM, **errors(e404="not_found: no such stored token", e422=TOKEN_422)},
)
async def list_zones(body: CloudflareZonesBody, principal: Reader) -> dict[str, Any]:
    """The zones of the account the token (or the stored token `token_id`) belongs to, with their
    ids for `connect` (at most 1000; `name` for one)."""
    zones = dns_setup.cloudflare_zones(Table(), principal.org_id, token=body.token, token_id=body.token_id)
    return {"data": dns_setup.list_zones(zones, name=body.name)}


@router.post(
    "/cloudflare/connect",
    name="cloudflare.connect",
    status_code=201,
    response_model=One[ConnectionView],
    summary="Connect a domain to a Cloudflare zone",
    responses={
        **UPSTREAM,
        **errors(
            e404="not_found: no such domain or stored token in this organization",
            e422=f"{TOKEN_422}; zone_not_found: the token cannot see the zone; zone_mismatch: the zone does "
            "not hold the domain; cloudflare_token_limit_reached",
        ),
    },
)
async def connect(body: CloudflareConnect, request: Request, principal: Writer) -> dict[str, Any]:
    """Connect the domain to the zone that holds it, for `preview` and `apply`. A `token` is checked
    with Cloudflare and stored sealed (listed at `GET /cloudflare/tokens`, never returned); a
    `token_id` reuses a stored one. Connecting again replaces the domain's connection."""
    table = Table()
    audit_target(request, "domain", body.domain_id, provider="cloudflare", zone_id=body.zone_id)
    domain = domain_service.load_domain(table, principal.org_id, body.domain_id)
    connection = dns_setup.connect_cloudflare(
        table, domain, body.zone_id, token=body.token, token_id=body.token_id, name=body.name
    )
    return one(dns_setup.connection_view(connection))


@router.post(
    "/cloudflare/preview",
    name="cloudflare.preview",
    status_code=201,
    response_model=One[PreviewView],
    summary="Preview the DNS changes for a domain",
    responses={
        **UPSTREAM,
        **errors(
            e404="not_found: no such domain",
            e409="not_connected: the domain is not connected to Cloudflare (or its token was deleted)",
            e422="cloudflare_token_invalid, zone_not_found: the stored token no longer works for the zone",
        ),
    },
)
async def preview(body: PreviewBody, request: Request, principal: Reader) -> dict[str, Any]:
    """Compare the records the domain needs with the zone's and keep the change set (15 minutes):
    records to create, to update (an SPF include merged into the existing `v=spf1` record), already
    correct, and conflicts left alone (another MX set unless `replace_mx`). Nothing changes yet."""
    table = Table()
    audit_target(request, "domain", body.domain_id, provider="cloudflare", replace_mx=body.replace_mx)
    domain = domain_service.load_domain(table, principal.org_id, body.domain_id)
    item = dns_setup.preview(table, domain, "cloudflare", replace_mx=body.replace_mx)
    return one(dns_setup.preview_view(item))


@router.post(
    "/cloudflare/apply",
    name="cloudflare.apply",
    response_model=One[ApplyResult],
    summary="Apply a preview's DNS changes",
    responses={
        **UPSTREAM,
        **errors(
            e404="not_found: no such preview (or domain)",
            e409="zone_changed: the zone's records changed since the preview; preview_outdated: the domain's "
            "records or connection changed; not_connected",
            e410="preview_expired: preview again",
            e422="cloudflare_token_invalid, zone_not_found",
        ),
    },
)
async def apply(body: ApplyBody, request: Request, principal: Writer) -> dict[str, Any]:
    """Make exactly the previewed changes, then check the domain's DNS. Applying the same preview
    again answers the same result and changes nothing; an apply interrupted midway finishes on
    retry. Records Mailroom did not create are never removed, except another MX set with
    `replace_mx`."""
    audit_target(request, "dns_preview", body.preview_id, provider="cloudflare")
    return one(dns_setup.apply(Table(), principal.org_id, "cloudflare", body.preview_id))


@router.get(
    "/cloudflare/tokens",
    name="cloudflare.tokens",
    response_model=ListOf[StoredToken],
    summary="List stored Cloudflare tokens",
    responses=errors(e422="invalid_cursor, validation_error"),
)
async def list_tokens(request: Request, principal: Reader, page_query: PageParams) -> dict[str, Any]:
    """The tokens stored by `connect`, by their first characters (`token_prefix`); never the token."""
    listing = cloudflare_tokens.list_tokens(
        Table(), principal.org_id, per_page=page_query.per_page, cursor=page_query.cursor
    )
    return pagination.envelope(
        request, listing.page, listing.views, per_page=page_query.per_page, total=listing.total
    )


@router.delete(
    "/cloudflare/tokens/{cloudflare_token_id}",
    name="cloudflare.token_delete",
    status_code=204,
    summary="Delete a stored Cloudflare token",
    responses=errors(e404="not_found: no such stored token in this organization"),
)
async def delete_token(
    request: Request,
    principal: Deleter,
    cloudflare_token_id: Annotated[str, Path(max_length=64, description="The stored token's id (cft_...)")],
) -> Response:
    """Forget a stored token (its sealed copy is deleted). Domains connected with it must be
    connected again before the next preview. Revoke the token at Cloudflare too."""
    audit_target(request, "cloudflare_token", cloudflare_token_id)
    cloudflare_tokens.remove_token(Table(), principal.org_id, cloudflare_token_id)
    return Response(status_code=204)

"""The bodies of ``/api/v1/cloudflare/...`` and ``/api/v1/route53/...`` (docs/dns-providers.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from mailroom.api.models import Strict, Timestamp

_CREDENTIAL = "A Cloudflare API token (Zone:Read and DNS:Edit on the zone); stored (sealed) only by connect"
_STORED = "A stored token's id (cft_..., from GET /cloudflare/tokens) instead of the token"
_ROLE_ARN = (
    "An IAM role in the account that hosts the zone, trusting this stack's role with your organization id "
    "as sts:ExternalId; omitted: the stack's own account, where the operator allows it (else 422 "
    "role_arn_required)"
)
ZoneName = Field(default=None, min_length=1, max_length=253, description="Only the zone of this name")
DomainId = Field(min_length=1, max_length=64, description="The domain to set up (dom_...)")
CloudflareZoneId = Field(pattern=r"^[0-9a-f]{32}$", description="The zone's id (32 hex digits, from zones)")
HostedZoneId = Field(pattern=r"^[A-Z0-9]{1,32}$", description="The hosted zone's id (Z..., from zones)")


class TokenBody(Strict):
    token: str = Field(min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$", description=_CREDENTIAL)


class CloudflareCredentials(Strict):
    """Exactly one of `token` and `token_id`."""

    token: str | None = Field(
        default=None, min_length=20, max_length=200, pattern=r"^[A-Za-z0-9_-]+$", description=_CREDENTIAL
    )
    token_id: str | None = Field(default=None, min_length=1, max_length=64, description=_STORED)

    @model_validator(mode="after")
    def one_credential(self) -> CloudflareCredentials:
        if (self.token is None) == (self.token_id is None):
            raise ValueError("give exactly one of token and token_id")
        return self


class CloudflareZonesBody(CloudflareCredentials):
    name: str | None = ZoneName


class CloudflareConnect(CloudflareCredentials):
    """Connect a domain to a Cloudflare zone. A `token` is checked with Cloudflare and stored
    (sealed); a `token_id` reuses a stored one."""

    domain_id: str = DomainId
    zone_id: str = CloudflareZoneId
    name: str | None = Field(default=None, max_length=100, description="A label for a token stored now")


class Route53ZonesBody(Strict):
    role_arn: str | None = Field(default=None, max_length=2048, description=_ROLE_ARN)
    name: str | None = ZoneName


class Route53Connect(Strict):
    domain_id: str = DomainId
    zone_id: str = HostedZoneId
    role_arn: str | None = Field(default=None, max_length=2048, description=_ROLE_ARN)


class PreviewBody(Strict):
    domain_id: str = DomainId
    replace_mx: bool = Field(
        default=False,
        description="Replace another MX set at the domain (or its MAIL FROM name) by Mailroom's; otherwise "
        "such a set is a conflict and is left alone",
    )


class ApplyBody(Strict):
    preview_id: str = Field(min_length=1, max_length=64, description="The preview to apply (dpv_...)")


# --- answers -----------------------------------------------------------------------------------------


class TokenValidation(BaseModel):
    valid: bool = Field(description="Active at Cloudflare and usable now")
    status: str = Field(description="Cloudflare's status of the token (active, disabled, expired) or invalid")
    cloudflare_token_id: str | None = Field(description="Cloudflare's id of the token")
    expires_on: str | None = Field(description="When Cloudflare expires it, if it does")


class ZoneView(BaseModel):
    id: str
    name: str
    status: str = Field(description="Cloudflare's zone status; for Route 53 active (public) or private")
    private: bool = Field(description="A Route 53 private hosted zone (cannot publish mail records)")
    record_count: int | None = Field(description="Record sets in the zone (Route 53)")


class ZoneList(BaseModel):
    data: list[ZoneView]


class ConnectionView(BaseModel):
    domain_id: str
    domain: str
    provider: Literal["cloudflare", "route53"]
    zone_id: str
    zone_name: str
    token_id: str | None = Field(description="The stored Cloudflare token used (cft_...)")
    role_arn: str | None = Field(description="The Route 53 role assumed; null: the stack's own account")
    connected_at: Timestamp


class StoredToken(BaseModel):
    id: str = Field(description="cft_...")
    name: str | None
    token_prefix: str = Field(description="The token's first characters (the token itself is never returned)")
    cloudflare_token_id: str | None
    expires_on: str | None
    created_at: Timestamp
    last_used_at: Timestamp | None


class RecordPlanView(BaseModel):
    purpose: Literal["inbound_mx", "mail_from_mx", "spf", "dkim", "dmarc"]
    type: Literal["MX", "TXT"]
    name: str
    value: str = Field(description="What the record will hold (for a merged SPF record: the merged record)")
    priority: int | None
    action: Literal["create", "update", "unchanged", "conflict"] = Field(
        description="unchanged: already correct; conflict: something Mailroom leaves alone (see reason)"
    )
    current: list[str] = Field(description="What the zone holds there now for this purpose")
    reason: str | None


class ChangeView(BaseModel):
    action: Literal["create", "update", "delete"] = Field(
        description="delete happens only to MX records, with replace_mx"
    )
    type: Literal["MX", "TXT"]
    name: str
    content: str = Field(description="The record's new content (for delete: the content removed)")
    priority: int | None
    ttl: int
    purpose: str
    previous_content: str | None = Field(description="The content an update replaces")


class Summary(BaseModel):
    create: int
    update: int
    unchanged: int
    conflict: int


class PreviewView(BaseModel):
    id: str = Field(description="dpv_...: apply it before expires_at")
    provider: Literal["cloudflare", "route53"]
    domain_id: str
    domain: str
    zone_id: str
    zone_name: str
    replace_mx: bool
    zone_fingerprint: str = Field(description="Digest of the zone's records at the domain's names, as read")
    summary: Summary
    records: list[RecordPlanView] = Field(description="Each required record and what apply does about it")
    changes: list[ChangeView] = Field(description="Exactly what apply will do, in order")
    created_at: Timestamp
    expires_at: Timestamp


class AppliedChange(ChangeView):
    outcome: Literal["made", "already_made"] = Field(
        description="already_made: an earlier, interrupted apply of this preview made it"
    )


class ApplyResult(BaseModel):
    preview_id: str
    provider: Literal["cloudflare", "route53"]
    domain_id: str
    zone_id: str
    status: Literal["applied"]
    changes: list[AppliedChange]
    dns_check_id: str = Field(description="The DNS check run after applying (GET /dns-checks/{id})")
    domain_status: Literal["pending", "verified", "failed"] = Field(
        description="The domain's status after that check (records can take minutes to be served)"
    )
    applied_at: Timestamp

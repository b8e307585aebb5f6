"""Email verification (``/api/v1/verify``): one address at a time, and the credits it consumes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from mailroom.api.models import One, Strict, Timestamp, errors, one
from mailroom.api.pipeline import api_router, audit_target
from mailroom.api.principal import require
from mailroom.domain.principal import Principal
from mailroom.services import verification as service
from mailroom.store.table import Table

router = api_router("/api/v1/verify", tags=["verify"])
READ = "verify:read"
WRITE = "verify:write"

Status = Literal["deliverable", "undeliverable", "risky", "unknown"]
CREDITS_402 = "insufficient_credits: no verification credit is left this month (see GET /verify/credits)"


class VerifyRequest(Strict):
    email: str = Field(
        min_length=1,
        max_length=512,
        description="The address to verify, as typed (internationalized addresses are accepted). "
        "A malformed address is not an error: it is verified as undeliverable (invalid_syntax).",
        examples=["jane.doe@gmial.com"],
    )
    smtp: bool = Field(
        default=False,
        description="Also ask the domain's mail server whether it accepts the mailbox (and whether it "
        "accepts any address: catch_all), without sending mail. Slower (seconds); rate-limited per "
        "organization (429 probe_rate_limited) and per target domain; answers unknown with a reason "
        "where the deployment cannot reach port 25.",
    )


class Reason(BaseModel):
    code: str = Field(
        description="invalid_syntax, domain_not_found, null_mx, no_mail_host, mailbox_rejected, "
        "dns_unavailable, disposable, role_account, catch_all, implicit_mx, possible_typo, or why an "
        "SMTP probe had no answer: smtp_probe_disabled, smtp_unreachable, smtp_timeout, "
        "smtp_temporary_failure, smtp_rate_limited, smtp_sender_refused, smtputf8_unsupported, smtp_error"
    )
    message: str


class Checks(BaseModel):
    """Each check's result; null where it could not be made (invalid syntax, DNS unavailable, no probe)."""

    syntax: bool
    domain: bool | None = Field(description="The domain exists in DNS")
    mx: bool | None = Field(description="It publishes MX records (false with an A/AAAA fallback)")
    disposable: bool | None
    role: bool | None = Field(description="A role address (info@, support@...) rather than a person")
    free_provider: bool | None = Field(description="A consumer mailbox provider (gmail.com, outlook.com...)")
    catch_all: bool | None = Field(description="The mail server accepts any address (probe only)")
    smtp: Literal["not_requested", "accepted", "rejected", "unknown", "skipped"]


class Verification(BaseModel):
    email: str = Field(description="The address as sent")
    status: Status
    reasons: list[Reason] = Field(description="Why the status, most decisive first")
    checks: Checks
    normalized: str | None = Field(description="The address in normal form; null when it is not valid")
    suggestion: str | None = Field(
        description="The address with a common provider's domain it looks mistyped from"
    )


class VerifiedCounts(BaseModel):
    deliverable: int
    undeliverable: int
    risky: int
    unknown: int


class CreditsView(BaseModel):
    month: str = Field(description="The UTC calendar month the allowance is for (YYYY-MM)")
    allowance: int
    used: int
    remaining: int
    resets_at: Timestamp
    verified: VerifiedCounts = Field(description="This month's verifications by status")


@router.post(
    "",
    name="verify.single",
    response_model=One[Verification],
    summary="Verify an email address",
    responses=errors(
        e402=CREDITS_402,
        e429="probe_rate_limited: too many SMTP probes this minute for the organization (Retry-After)",
    ),
)
async def verify_address(
    body: VerifyRequest, request: Request, principal: Annotated[Principal, Depends(require(WRITE))]
) -> dict[str, Any]:
    """Whether mail to the address would be delivered: `deliverable`, `undeliverable`, `risky`
    (disposable, role account, catch-all) or `unknown` (DNS or the mail server gave no answer), with
    the reasons, each check's result, the normalized address and a typo suggestion. Consumes one
    credit (a replay with the same Idempotency-Key does not)."""
    audit_target(request, "verification", "-", smtp=body.smtp)
    return one(await service.verify_one(Table(), principal.org_id, body.email, smtp=body.smtp))


@router.get(
    "/credits", name="verify.credits", response_model=One[CreditsView], summary="Verification credits"
)
async def get_credits(principal: Annotated[Principal, Depends(require(READ))]) -> dict[str, Any]:
    """The organization's monthly verification allowance, what was used and what is left; credits
    renew at `resets_at` (the first of next month, UTC)."""
    return one(service.credits_of(Table(), principal.org_id).view())

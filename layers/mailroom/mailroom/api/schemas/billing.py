"""Response models of the billing endpoints (``/api/v1/billing``; docs/billing.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mailroom.api.models import Timestamp

Money = Field(pattern=r"^\d+\.\d{2,6}$", description="USD, as a decimal string", examples=["99.00"])


class PlanPrice(BaseModel):
    name: str = Field(description="The organization's plan (docs/plans.md)")
    price: str = Field(pattern=r"^\d+\.\d{2}$", description="The plan's monthly price", examples=["99.00"])
    currency: Literal["USD"]


class Period(BaseModel):
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="The calendar month (UTC)", examples=["2026-11"])
    start: Timestamp
    end: Timestamp = Field(description="Exclusive: the first moment of the next month")


class UsageView(BaseModel):
    messages_received: int = Field(ge=0, description="Inbound messages stored (each mailbox a copy)")
    messages_sent: int = Field(ge=0, description="Messages sent")
    messages_forwarded: int = Field(ge=0, description="Received messages forwarded to external addresses")
    sent_recipients: int = Field(
        ge=0, description="Recipients of the messages sent and forwarded (SES bills each)"
    )
    messages_imported: int = Field(ge=0, description="Messages imported by migrations")
    verifications: int = Field(ge=0, description="Verification credits used (POST /api/v1/verify, bulk)")
    api_requests: int = Field(ge=0, description="Authenticated API requests (docs/billing.md: how)")
    stored_bytes_peak: int = Field(
        ge=0, description="The month's peak storage: an upper bound, exact when nothing was removed"
    )
    stored_bytes_end: int = Field(ge=0, description="Storage at the month's end (so far: now)")
    stored_bytes_added: int = Field(ge=0, description="Bytes of messages stored during the month")
    stored_bytes_removed: int = Field(ge=0, description="Bytes of messages removed during the month")


class LimitUse(BaseModel):
    name: Literal["domains", "mailboxes", "aliases", "storage", "verify_credits"]
    used: int
    limit: int
    unit: Literal["count", "bytes"]
    remaining: int
    exceeded: bool = Field(
        description="Over the limit (a plan lowered below what is held): nothing more fits"
    )


class AwsCost(BaseModel):
    currency: Literal["USD"]
    region: str = Field(description="The price table used: the stack's region (else us-east-1's)")
    by_service: dict[
        Literal["lambda", "dynamodb", "s3", "ses", "stepfunctions", "sqs", "apigateway"], str
    ] = Field(description="USD per service, six decimals")
    total: str = Money


class BillingStatus(BaseModel):
    organization_id: str
    plan: PlanPrice | None = Field(description="Null for an organization on no plan (made before plans)")
    period: Period
    usage: UsageView
    limits: list[LimitUse]
    aws_cost: AwsCost = Field(
        description="What this organization's usage cost in AWS this month so far (estimate)"
    )
    as_of: Timestamp


class Invoice(BaseModel):
    id: str = Field(description="invc_<yyyymm>_<digest>")
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    period_start: Timestamp
    period_end: Timestamp
    plan: str | None
    plan_version: int | None
    plan_price: str = Field(description="The plan's monthly price when the month closed (USD)")
    currency: Literal["USD"]
    usage: UsageView
    aws_cost: AwsCost
    amount_due: str = Field(description="What the organization owes for the month: the plan's price (USD)")
    status: Literal["closed"]
    closed_at: Timestamp

"""Billing arithmetic: a month's usage, what it cost in AWS, and its statement. Pure.

The AWS cost is an estimate from the metered usage, not a bill: each unit of work (a received
message, an API request, ...) is priced at the AWS resources Mailroom spends on it (``WORK``: Lambda
invocations and GB-seconds, DynamoDB request units, S3 requests, SES messages and 256 KB chunks,
Step Functions transitions, SQS requests, API Gateway requests), times the on-demand list prices of
the stack's region (``PRICES``). docs/billing.md states the formula and where each number comes from.
Free tiers and savings plans are ignored (they are the account's, not an organization's).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

GB = 1024**3
CHUNK = 256 * 1024  # SES bills received mail per 256 KB chunk
MICRO = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Prices:
    """On-demand list prices in USD (published AWS pricing pages, checked 2026-11)."""

    lambda_request: Decimal  # per invocation
    lambda_gb_second: Decimal  # arm64
    dynamodb_write_unit: Decimal  # on-demand, per write request unit
    dynamodb_read_unit: Decimal  # on-demand, per read request unit
    s3_gb_month: Decimal  # S3 Standard storage
    s3_put: Decimal  # per PUT/COPY/POST/LIST request
    s3_get: Decimal  # per GET request
    ses_message: Decimal  # per message sent (per recipient) or received
    ses_inbound_chunk: Decimal  # per 256 KB of received mail
    stepfunctions_transition: Decimal  # standard workflows
    sqs_request: Decimal  # standard queues
    apigateway_request: Decimal  # HTTP API, first 300 M a month


def _per_million(value: str) -> Decimal:
    return Decimal(value) / 1_000_000


def _per_thousand(value: str) -> Decimal:
    return Decimal(value) / 1_000


_US = Prices(
    lambda_request=_per_million("0.20"),
    lambda_gb_second=Decimal("0.0000133334"),
    dynamodb_write_unit=_per_million("0.625"),
    dynamodb_read_unit=_per_million("0.125"),
    s3_gb_month=Decimal("0.023"),
    s3_put=_per_thousand("0.005"),
    s3_get=_per_thousand("0.0004"),
    ses_message=_per_thousand("0.10"),
    ses_inbound_chunk=_per_thousand("0.09"),
    stepfunctions_transition=_per_thousand("0.025"),
    sqs_request=_per_million("0.40"),
    apigateway_request=_per_million("1.00"),
)

PRICES: dict[str, Prices] = {
    "us-east-1": _US,
    "us-east-2": _US,
    "us-west-2": _US,
    "eu-west-1": Prices(
        lambda_request=_per_million("0.20"),
        lambda_gb_second=Decimal("0.0000133334"),
        dynamodb_write_unit=_per_million("0.7075"),
        dynamodb_read_unit=_per_million("0.1415"),
        s3_gb_month=Decimal("0.023"),
        s3_put=_per_thousand("0.005"),
        s3_get=_per_thousand("0.0004"),
        ses_message=_per_thousand("0.10"),
        ses_inbound_chunk=_per_thousand("0.09"),
        stepfunctions_transition=_per_thousand("0.025"),
        sqs_request=_per_million("0.40"),
        apigateway_request=_per_million("1.11"),
    ),
    "eu-central-1": Prices(
        lambda_request=_per_million("0.20"),
        lambda_gb_second=Decimal("0.0000133334"),
        dynamodb_write_unit=_per_million("0.7625"),
        dynamodb_read_unit=_per_million("0.1525"),
        s3_gb_month=Decimal("0.0245"),
        s3_put=_per_thousand("0.0054"),
        s3_get=_per_thousand("0.00043"),
        ses_message=_per_thousand("0.10"),
        ses_inbound_chunk=_per_thousand("0.09"),
        stepfunctions_transition=_per_thousand("0.025"),
        sqs_request=_per_million("0.40"),
        apigateway_request=_per_million("1.20"),
    ),
}
DEFAULT_PRICE_REGION = "us-east-1"


def prices_for(region: str) -> tuple[str, Prices]:
    """The region's price table, or us-east-1's for a region the table does not list (the answer
    names the region it priced with)."""
    if region in PRICES:
        return region, PRICES[region]
    return DEFAULT_PRICE_REGION, PRICES[DEFAULT_PRICE_REGION]


@dataclass(frozen=True, slots=True)
class Work:
    """AWS resources one unit of work spends (averages over Mailroom's code paths; docs/billing.md)."""

    lambda_invocations: Decimal = Decimal(0)
    lambda_gb_seconds: Decimal = Decimal(0)
    dynamodb_write_units: Decimal = Decimal(0)
    dynamodb_read_units: Decimal = Decimal(0)
    s3_puts: Decimal = Decimal(0)
    s3_gets: Decimal = Decimal(0)
    ses_messages: Decimal = Decimal(0)
    stepfunctions_transitions: Decimal = Decimal(0)
    sqs_requests: Decimal = Decimal(0)
    apigateway_requests: Decimal = Decimal(0)


def _d(value: str) -> Decimal:
    return Decimal(value)


WORK: dict[str, Work] = {
    # The inbound function (1024 MB, ~0.5 s): SES writes the raw mail to S3, the function reads it,
    # writes the stored copy (raw, body, attachments ~2 PUTs), reads the routing items (~4 RRU) and
    # stores in one transaction of ~5 items (2 WRU each); the event reaches webhooks through SQS.
    "messages_received": Work(
        lambda_invocations=_d("1"),
        lambda_gb_seconds=_d("0.5"),
        dynamodb_write_units=_d("12"),
        dynamodb_read_units=_d("4"),
        s3_puts=_d("3"),
        s3_gets=_d("1"),
        ses_messages=_d("1"),
        sqs_requests=_d("3"),
    ),
    # The send's own request is an API request (counted there); the send adds SES per recipient
    # (below, from sent_recipients), the Sent copy's S3 PUTs and its storing transaction.
    "messages_sent": Work(
        dynamodb_write_units=_d("12"),
        dynamodb_read_units=_d("6"),
        s3_puts=_d("2"),
        sqs_requests=_d("3"),
    ),
    # An external forward, sent by the inbound function that stored the message (its SES charge is
    # per recipient, from sent_recipients): the forwarded copy built and its record written.
    "messages_forwarded": Work(lambda_gb_seconds=_d("0.1"), dynamodb_write_units=_d("4"), s3_gets=_d("1")),
    "sent_recipients": Work(ses_messages=_d("1")),
    # A migration imports 250 messages per batch: one Lambda invocation (1024 MB, ~60 s) and ~10
    # state transitions per batch; per message an S3 PUT or two and its storing transaction.
    "messages_imported": Work(
        lambda_invocations=_d("0.004"),
        lambda_gb_seconds=_d("0.24"),
        dynamodb_write_units=_d("12"),
        dynamodb_read_units=_d("3"),
        s3_puts=_d("2"),
        stepfunctions_transitions=_d("0.04"),
    ),
    # One verification: a share of the API request (counted there) plus the DNS and credit work.
    "verifications": Work(
        lambda_gb_seconds=_d("0.1"),
        dynamodb_write_units=_d("1"),
        dynamodb_read_units=_d("2"),
    ),
    # Every authenticated API request: API Gateway, one invocation (512 MB, ~150 ms on average),
    # the token lookup (cached when warm), the rate window's write, the audit record of a write.
    "api_requests": Work(
        lambda_invocations=_d("1"),
        lambda_gb_seconds=_d("0.075"),
        dynamodb_write_units=_d("1.5"),
        dynamodb_read_units=_d("2"),
        apigateway_requests=_d("1"),
    ),
}


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year, number, 1, tzinfo=UTC)


def next_month(month: str) -> str:
    start = month_start(month)
    return f"{start.year + start.month // 12:04d}-{start.month % 12 + 1:02d}"


def previous_month(month: str) -> str:
    start = month_start(month)
    return f"{start.year - (start.month == 1):04d}-{(start.month - 2) % 12 + 1:02d}"


@dataclass(frozen=True, slots=True)
class Usage:
    """One organization's metered month."""

    messages_received: int = 0
    messages_sent: int = 0
    messages_forwarded: int = 0
    sent_recipients: int = 0
    messages_imported: int = 0
    verifications: int = 0
    api_requests: int = 0
    stored_bytes_added: int = 0
    stored_bytes_removed: int = 0
    stored_bytes_end: int = 0  # what the organization holds at the end (so far: now)

    @property
    def stored_bytes_start(self) -> int:
        return max(0, self.stored_bytes_end - self.stored_bytes_added + self.stored_bytes_removed)

    @property
    def stored_bytes_peak(self) -> int:
        """An upper bound of the month's peak: the start plus everything stored during the month
        (exact when nothing was removed before the peak; see docs/billing.md)."""
        return max(self.stored_bytes_end, self.stored_bytes_start + self.stored_bytes_added)

    def view(self) -> dict[str, int]:
        return {
            "messages_received": self.messages_received,
            "messages_sent": self.messages_sent,
            "messages_forwarded": self.messages_forwarded,
            "sent_recipients": self.sent_recipients,
            "messages_imported": self.messages_imported,
            "verifications": self.verifications,
            "api_requests": self.api_requests,
            "stored_bytes_peak": self.stored_bytes_peak,
            "stored_bytes_end": self.stored_bytes_end,
            "stored_bytes_added": self.stored_bytes_added,
            "stored_bytes_removed": self.stored_bytes_removed,
        }


def usage_from(usage_item: Mapping[str, Any] | None, verifications: int, stored_bytes_end: int) -> Usage:
    counted = usage_item or {}

    def n(name: str) -> int:
        return int(counted.get(name, 0))

    return Usage(
        messages_received=n("messages_received"),
        messages_sent=n("messages_sent"),
        messages_forwarded=n("messages_forwarded"),
        sent_recipients=n("sent_recipients"),
        messages_imported=n("messages_imported"),
        verifications=verifications,
        api_requests=n("api_requests"),
        stored_bytes_added=n("stored_bytes_added"),
        stored_bytes_removed=n("stored_bytes_removed"),
        stored_bytes_end=max(0, stored_bytes_end),
    )


def _money(value: Decimal) -> Decimal:
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def cost(usage: Usage, prices: Prices, *, storage_months: Decimal = Decimal(1)) -> dict[str, Decimal]:
    """USD per service for the month (``storage_months``: the share of the month elapsed, for a
    month still running; storage is billed per GB-month on the month's average, estimated as the
    mean of its start and end)."""
    counts = {
        "messages_received": usage.messages_received,
        "messages_sent": usage.messages_sent,
        "messages_forwarded": usage.messages_forwarded,
        "sent_recipients": usage.sent_recipients,
        "messages_imported": usage.messages_imported,
        "verifications": usage.verifications,
        "api_requests": usage.api_requests,
    }
    sums: dict[str, Decimal] = dict.fromkeys(Work.__dataclass_fields__, Decimal(0))
    for name, count in counts.items():
        work = WORK[name]
        for field_name in sums:
            sums[field_name] += getattr(work, field_name) * count
    # SES bills received mail per 256 KB chunk; the bytes of received mail are not counted apart
    # from other stored bytes, so each received message is taken as one chunk (most mail is smaller).
    received_chunks = Decimal(usage.messages_received)
    average_gb = Decimal(usage.stored_bytes_start + usage.stored_bytes_end) / 2 / GB
    by_service = {
        "lambda": sums["lambda_invocations"] * prices.lambda_request
        + sums["lambda_gb_seconds"] * prices.lambda_gb_second,
        "dynamodb": sums["dynamodb_write_units"] * prices.dynamodb_write_unit
        + sums["dynamodb_read_units"] * prices.dynamodb_read_unit,
        "s3": sums["s3_puts"] * prices.s3_put
        + sums["s3_gets"] * prices.s3_get
        + average_gb * storage_months * prices.s3_gb_month,
        "ses": sums["ses_messages"] * prices.ses_message + received_chunks * prices.ses_inbound_chunk,
        "stepfunctions": sums["stepfunctions_transitions"] * prices.stepfunctions_transition,
        "sqs": sums["sqs_requests"] * prices.sqs_request,
        "apigateway": sums["apigateway_requests"] * prices.apigateway_request,
    }
    return {service: _money(value) for service, value in by_service.items()}


def money(value: Decimal) -> str:
    """USD as a string with six decimals (estimates of a few requests are fractions of a cent)."""
    return f"{_money(value):f}"


def invoice_id(org_id: str, month: str) -> str:
    """Deterministic (closing twice writes the same invoice) and unique per organization (an id of
    another tenant never names one of the caller's invoices)."""
    import hashlib

    digest = hashlib.sha256(f"{org_id}:{month}".encode()).hexdigest()[:16]
    return f"invc_{month.replace('-', '')}_{digest}"


def month_of_invoice_id(invoice_id_value: str) -> str | None:
    """The month an invoice id names (``invc_202611_...`` → ``2026-11``), None if it is not one."""
    prefix, _, rest = invoice_id_value.partition("_")
    digits, _, digest = rest.partition("_")
    if prefix != "invc" or len(digits) != 6 or not digits.isdigit() or len(digest) != 16:
        return None
    if not 1 <= int(digits[4:]) <= 12:
        return None
    return f"{digits[:4]}-{digits[4:]}"


CSV_COLUMNS = ("section", "item", "quantity", "unit", "amount_usd")


def invoice_csv(invoice: Mapping[str, Any]) -> str:
    """The statement as CSV: one row per usage figure, plan charge and cost estimate line, so a
    spreadsheet sums the amounts of a section."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(["invoice", "id", invoice["id"], "", ""])
    writer.writerow(["invoice", "period", invoice["period"], "", ""])
    writer.writerow(["invoice", "plan", invoice["plan"] or "", "", ""])
    units = {"stored_bytes_peak": "bytes", "stored_bytes_end": "bytes"}
    units |= {"stored_bytes_added": "bytes", "stored_bytes_removed": "bytes"}
    for name, quantity in invoice["usage"].items():
        writer.writerow(["usage", name, quantity, units.get(name, "count"), ""])
    writer.writerow(["charge", "plan", 1, "month", invoice["plan_price"]])
    for service, amount in invoice["aws_cost"]["by_service"].items():
        writer.writerow(["aws_cost_estimate", service, "", "", amount])
    writer.writerow(["aws_cost_estimate", "total", "", "", invoice["aws_cost"]["total"]])
    writer.writerow(["total", "amount_due", "", "", invoice["amount_due"]])
    return out.getvalue()

"""The arithmetic of ``python -m bench.cost``: billable quantities of a unit of work, times prices.

Pure: the quantities come from the benches' measurements (``bench/_aws_meter.py``), the prices
from the billing estimate's table (``mailroom.domain.billing.PRICES``, docs/billing.md), so the
cost model and the invoices price AWS the same way. Quantities the table has no price for
(EventBridge Scheduler invocations, KMS requests, DynamoDB storage) are reported, not priced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal

from mailroom.domain.billing import GB, Prices

SES_CHUNK = 256 * 1024  # SES bills received mail per 256 KB
CENT = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class UnitWork:
    """What one unit of work (a received message, a send, ...) spends, as AWS bills it."""

    lambda_invocations: float = 0.0
    lambda_gb_seconds: float = 0.0
    apigateway_requests: float = 0.0
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    s3_put_tier: float = 0.0
    s3_get_tier: float = 0.0
    ses_messages: float = 0.0  # recipients sent to, or messages received
    ses_inbound_chunks: float = 0.0
    sqs_requests: float = 0.0
    stepfunctions_transitions: float = 0.0
    scheduler_invocations: float = 0.0  # not in the price table
    kms_requests: float = 0.0  # not in the price table

    def __add__(self, other: UnitWork) -> UnitWork:
        return UnitWork(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def scaled(self, factor: float) -> UnitWork:
        return UnitWork(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


UNPRICED = ("scheduler_invocations", "kms_requests")


def gb_seconds(memory_mb: int, seconds: float) -> float:
    """Lambda's billed GB-seconds of one invocation: the duration rounded up to the millisecond,
    times the configured memory."""
    return memory_mb / 1024 * math.ceil(seconds * 1000) / 1000


def ses_chunks(message_bytes: int) -> int:
    return max(1, math.ceil(message_bytes / SES_CHUNK))


def _d(value: float) -> Decimal:
    return Decimal(repr(value))


def cost_per_thousand(work: UnitWork, prices: Prices) -> dict[str, Decimal]:
    """USD per 1,000 units of ``work``, by service (unrounded)."""
    n = Decimal(1000)
    return {
        "lambda": n
        * (
            _d(work.lambda_invocations) * prices.lambda_request
            + _d(work.lambda_gb_seconds) * prices.lambda_gb_second
        ),
        "apigateway": n * _d(work.apigateway_requests) * prices.apigateway_request,
        "dynamodb": n
        * (
            _d(work.dynamodb_read_units) * prices.dynamodb_read_unit
            + _d(work.dynamodb_write_units) * prices.dynamodb_write_unit
        ),
        "s3": n * (_d(work.s3_put_tier) * prices.s3_put + _d(work.s3_get_tier) * prices.s3_get),
        "ses": n
        * (
            _d(work.ses_messages) * prices.ses_message
            + _d(work.ses_inbound_chunks) * prices.ses_inbound_chunk
        ),
        "sqs": n * _d(work.sqs_requests) * prices.sqs_request,
        "stepfunctions": n * _d(work.stepfunctions_transitions) * prices.stepfunctions_transition,
    }


def storage_month(s3_bytes: int, prices: Prices) -> Decimal:
    """USD for holding ``s3_bytes`` in S3 Standard for a month."""
    return Decimal(s3_bytes) / GB * prices.s3_gb_month


def usd(value: Decimal) -> str:
    """Four decimals: per-thousand costs are often fractions of a cent."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):f}"

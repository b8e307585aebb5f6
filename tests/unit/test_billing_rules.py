"""Billing arithmetic (domain/billing.py) and the in-memory API request meter."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.domain import billing
from mailroom.services.request_meter import RequestMeter
from mailroom.store.errors import Throttled


def test_months_roll_over_the_year() -> None:
    assert billing.next_month("2026-12") == "2027-01"
    assert billing.previous_month("2027-01") == "2026-12"
    assert billing.previous_month("2026-03") == "2026-02"
    assert billing.month_start("2026-02").isoformat() == "2026-02-01T00:00:00+00:00"


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=12), st.integers(min_value=2000, max_value=2999), st.integers(min_value=1, max_value=12)
)
def test_an_invoice_id_names_its_month_and_is_unique_per_organization(
    org: str, year: int, number: int
) -> None:
    month = f"{year:04d}-{number:02d}"
    invoice_id = billing.invoice_id(org, month)
    assert billing.month_of_invoice_id(invoice_id) == month
    assert invoice_id != billing.invoice_id(org + "x", month)
    assert billing.invoice_id(org, month) == invoice_id  # closing twice writes the same invoice


@pytest.mark.parametrize(
    "value",
    [
        "",
        "invc_",
        "inv_202611_0123456789abcdef",
        "invc_202613_0123456789abcdef",
        "invc_2026ab_0123456789abcdef",
        "invc_202611_short",
        "invc_202600_0123456789abcdef",
    ],
)
def test_what_is_not_an_invoice_id(value: str) -> None:
    assert billing.month_of_invoice_id(value) is None


def test_the_cost_formula_by_hand() -> None:
    """One received message, one send to two recipients, ten API requests, one GiB held all month,
    priced with us-east-1's table: the numbers docs/billing.md shows."""
    usage = billing.Usage(
        messages_received=1, messages_sent=1, sent_recipients=2, api_requests=10, stored_bytes_end=billing.GB
    )
    _, prices = billing.prices_for("us-east-1")
    cost = billing.cost(usage, prices)
    # Lambda: 11 invocations x 0.20/M + (0.5 + 10 x 0.075) GB-s x 0.0000133334
    assert cost["lambda"] == Decimal("0.000019")  # 0.0000022 + 0.00001666675
    # DynamoDB: (12 + 12 + 15) WRU x 0.625/M + (4 + 6 + 20) RRU x 0.125/M
    assert cost["dynamodb"] == Decimal("0.000028")  # 0.000024375 + 0.00000375
    # S3: 5 PUTs x 0.005/1000 + 1 GET x 0.0004/1000 + 1 GiB-month x 0.023
    assert cost["s3"] == Decimal("0.023025")
    # SES: (1 received + 2 recipients) x 0.10/1000 + 1 chunk x 0.09/1000
    assert cost["ses"] == Decimal("0.000390")
    assert cost["sqs"] == Decimal("0.000002")  # 6 requests x 0.40/M
    assert cost["apigateway"] == Decimal("0.000010")  # 10 x 1.00/M
    assert cost["stepfunctions"] == Decimal(0)
    assert billing.money(sum(cost.values(), Decimal(0))) == "0.023474"


def test_storage_is_priced_on_the_months_average_and_the_elapsed_share() -> None:
    _, prices = billing.prices_for("us-east-1")
    grown = billing.Usage(stored_bytes_added=2 * billing.GB, stored_bytes_end=2 * billing.GB)
    assert grown.stored_bytes_start == 0
    assert billing.cost(grown, prices)["s3"] == Decimal("0.023000")  # average 1 GiB
    assert billing.cost(grown, prices, storage_months=Decimal("0.5"))["s3"] == Decimal("0.011500")


def test_an_unlisted_region_is_priced_as_us_east_1_and_says_so() -> None:
    assert billing.prices_for("ap-southeast-9")[0] == "us-east-1"
    assert billing.prices_for("eu-west-1")[0] == "eu-west-1"


def test_peak_is_an_upper_bound_that_never_falls_below_the_end() -> None:
    # Started the month with 1000, stored 500, removed 700: ended at 800; the peak was at most 1500.
    usage = billing.Usage(stored_bytes_added=500, stored_bytes_removed=700, stored_bytes_end=800)
    assert (usage.stored_bytes_start, usage.stored_bytes_peak) == (1000, 1500)
    nothing_removed = billing.Usage(stored_bytes_added=500, stored_bytes_end=1500)
    assert nothing_removed.stored_bytes_peak == 1500  # exact: the end


def test_the_csv_has_one_row_per_figure() -> None:
    invoice = {
        "id": "invc_202611_0123456789abcdef",
        "period": "2026-11",
        "plan": "pro",
        "plan_price": "99.00",
        "usage": billing.Usage(messages_received=3).view(),
        "aws_cost": {"by_service": {"lambda": "0.000001", "s3": "0.000002"}, "total": "0.000003"},
        "amount_due": "99.00",
    }
    rows = list(csv.reader(io.StringIO(billing.invoice_csv(invoice))))
    assert rows[0] == list(billing.CSV_COLUMNS)
    assert ["usage", "messages_received", "3", "count", ""] in rows
    assert ["usage", "stored_bytes_end", "0", "bytes", ""] in rows
    assert ["charge", "plan", "1", "month", "99.00"] in rows
    assert rows[-1] == ["total", "amount_due", "", "", "99.00"]


class FakeTable:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail


def test_the_meter_writes_once_per_organization_and_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[tuple[str, str, int]] = []

    def add(table: FakeTable, org_id: str, month: str, *, api_requests: int) -> None:
        if table.fail:
            raise Throttled("slow down")
        written.append((org_id, month, api_requests))

    monkeypatch.setattr("mailroom.services.request_meter.usage.add", add)
    now = [1000.0]
    meter = RequestMeter(monotonic=lambda: now[0])
    for org in ("a", "a", "b", "a"):
        meter.count(org)
    assert meter.flush_if_due(FakeTable(), interval=60) == 0  # not due: nothing written
    now[0] += 61
    assert meter.flush_if_due(FakeTable(), interval=60) == 2
    assert sorted((org, n) for org, _, n in written) == [("a", 3), ("b", 1)]

    meter.count("a")
    now[0] += 61
    assert meter.flush_if_due(FakeTable(fail=True), interval=60) == 0  # refused: kept, not lost
    meter.count("a")
    assert meter.flush(FakeTable()) == 1
    assert written[-1][0::2] == ("a", 2)
    assert meter.pending() == {}


def test_a_plans_price_and_verifier_credits_are_its_data() -> None:
    from mailroom.domain import plans

    assert [plans.DEFAULT_PLANS[n].price_cents for n in ("nano", "starter", "pro", "agency")] == [
        900,
        2900,
        9900,
        29900,
    ]
    assert plans.DEFAULT_PLANS["nano"].limits["verify_credits"] == 100
    assert "verify_credits" not in plans.DEFAULT_PLANS["pro"].limits  # the deployment's default
    pro = plans.DEFAULT_PLANS["pro"]
    stored = plans.from_item(pro.as_dict())
    assert (stored.price_cents, stored.limits) == (9900, pro.limits)
    for bad in (-1, 10**9 + 1, True, 1.5):
        with pytest.raises(plans.InvalidPlan, match="price"):
            plans.build("x", description="", scopes=["*"], limits=pro.limits, price_cents=bad)  # type: ignore[arg-type]
    with pytest.raises(plans.InvalidPlan, match="verify_credits"):
        plans.validate_limits({"verify_credits": -1}, complete=False)

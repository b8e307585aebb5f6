"""Usage against the plan, the AWS cost estimate, and the monthly invoices (docs/billing.md).

Reading a month costs one BatchGetItem (the organization, the month's usage counters, its
verification tally) and one GetItem (the plan's price); the counters themselves were maintained by
the writes that did the work (store/usage.py), so nothing here scans or recounts.

Closing a month (``close_month``, the scheduled function on the first of the month) pages through
the organizations (GSI1, 100 a Query) and writes each one's invoice once: the put is conditioned on
the invoice not existing, so a schedule that fires twice, or a run resumed after a failure, writes
nothing more. The storage at the month's end is the organization's storage now, less what the new
month added and plus what it removed (its counters), so a late run still closes the right figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from mailroom import clock, errors
from mailroom.domain import billing as rules
from mailroom.observability import logger
from mailroom.services import plans, request_meter
from mailroom.services.mailbox_limits import org_limits
from mailroom.settings import get_settings
from mailroom.store import organizations, usage
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Page, Table

CURRENCY = "USD"
MB = 1024 * 1024
ORGS_PER_PAGE = 100


def _price(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def _plan_price_cents(table: Table, plan_name: str | None, known: dict[str, int] | None = None) -> int:
    """The plan's monthly price (``known``: prices read before, by plan name, for a closing run)."""
    if not plan_name:
        return 0
    if known is not None and plan_name in known:
        return known[plan_name]
    try:
        price = plans.get_plan(table, plan_name).price_cents
    except plans.PlanNotFound:
        price = 0  # a plan deleted from the table: nothing to charge by
    if known is not None:
        known[plan_name] = price
    return price


def _verify_allowance(org: Item, credits: Item | None) -> int:
    from mailroom.services import verification

    if credits is not None and "allowance" in credits:
        return int(credits["allowance"])
    return verification.allowance_of(org)


def _month_usage(table: Table, org_id: str, month: str) -> tuple[Item, rules.Usage, Item | None]:
    found = usage.month_items(table, org_id, month)
    org = found.get("org")
    if org is None:
        raise errors.not_found("Organization")
    credits = found.get("credits")
    current = int(org.get("storage_used_bytes", 0))
    if month != rules.month_of(clock.utcnow()):
        # A month that has ended: its end is now, less what has happened since (at most the
        # months after it that have counters; the closing schedule runs within the next one).
        later = usage.get_usage(table, org_id, rules.next_month(month)) or {}
        current += int(later.get("stored_bytes_removed", 0)) - int(later.get("stored_bytes_added", 0))
    verified = int((credits or {}).get("used", 0))
    return org, rules.usage_from(found.get("usage"), verified, current), credits


def _cost_view(metered: rules.Usage, *, storage_months: Decimal) -> dict[str, Any]:
    region, prices = rules.prices_for(get_settings().region)
    by_service = rules.cost(metered, prices, storage_months=storage_months)
    return {
        "currency": CURRENCY,
        "region": region,
        "by_service": {service: rules.money(amount) for service, amount in by_service.items()},
        "total": rules.money(sum(by_service.values(), Decimal(0))),
    }


def _limits_view(org: Item, metered: rules.Usage, verify_allowance: int) -> list[dict[str, Any]]:
    limits = org_limits(org)
    rows = [
        ("domains", int(org.get("domain_count", 0)), limits["domains"], "count"),
        ("mailboxes", int(org.get("mailbox_count", 0)), limits["mailboxes"], "count"),
        ("aliases", int(org.get("alias_count", 0)), limits["aliases"], "count"),
        ("storage", int(org.get("storage_used_bytes", 0)), limits["storage_mb"] * MB, "bytes"),
        ("verify_credits", metered.verifications, verify_allowance, "count"),
    ]
    return [
        {
            "name": name,
            "used": used,
            "limit": limit,
            "unit": unit,
            "remaining": max(limit - used, 0),
            "exceeded": used > limit,
        }
        for name, used, limit, unit in rows
    ]


def status(table: Table, org_id: str) -> dict[str, Any]:
    """This month so far: plan, period, usage against the limits, the AWS cost estimate."""
    request_meter.flush(table)  # this function's own pending counts, so the answer includes them
    now = clock.utcnow()
    month = rules.month_of(now)
    org, metered, credits = _month_usage(table, org_id, month)
    start, end = rules.month_start(month), rules.month_start(rules.next_month(month))
    elapsed = Decimal((now - start).total_seconds()) / Decimal((end - start).total_seconds())
    plan_name = org.get("plan")
    return {
        "organization_id": org_id,
        "plan": None
        if not plan_name
        else {"name": plan_name, "price": _price(_plan_price_cents(table, plan_name)), "currency": CURRENCY},
        "period": {"month": month, "start": clock.isoformat(start), "end": clock.isoformat(end)},
        "usage": metered.view(),
        "limits": _limits_view(org, metered, _verify_allowance(org, credits)),
        "aws_cost": _cost_view(metered, storage_months=elapsed),
        "as_of": clock.isoformat(now),
    }


# ----------------------------------------------------------------------------- invoices


def _invoice(table: Table, org_id: str, month: str, prices: dict[str, int] | None = None) -> Item:
    org, metered, _ = _month_usage(table, org_id, month)
    plan_name = org.get("plan")
    price = _price(_plan_price_cents(table, plan_name, prices))
    return {
        "id": rules.invoice_id(org_id, month),
        "org_id": org_id,
        "period": month,
        "period_start": clock.isoformat(rules.month_start(month)),
        "period_end": clock.isoformat(rules.month_start(rules.next_month(month))),
        "plan": plan_name,
        "plan_version": int(org["plan_version"]) if org.get("plan_version") is not None else None,
        "plan_price": price,
        "currency": CURRENCY,
        "usage": metered.view(),
        "aws_cost": _cost_view(metered, storage_months=Decimal(1)),
        "amount_due": price,
        "status": "closed",
        "closed_at": clock.now_iso(),
    }


@dataclass(slots=True)
class Closed:
    month: str
    closed: int = 0
    already_closed: int = 0
    not_yet_existing: int = 0
    errors: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "closed": self.closed,
            "already_closed": self.already_closed,
            "not_yet_existing": self.not_yet_existing,
            "errors": self.errors,
        }


def month_to_close(scheduled_at: datetime) -> str:
    """The month a run scheduled at ``scheduled_at`` closes: the one before it."""
    return rules.previous_month(rules.month_of(scheduled_at))


def close_month(table: Table, month: str) -> Closed:
    """Write every organization's invoice for ``month`` (see the module docstring). An
    organization's failure is logged and counted; the others are closed (a rerun finishes it)."""
    result = Closed(month=month)
    prices: dict[str, int] = {}  # one read per plan for the whole run
    month_end = clock.isoformat(rules.month_start(rules.next_month(month)))
    cursor: str | None = None
    while True:
        page = organizations.list_page(table, per_page=ORGS_PER_PAGE, cursor=cursor)
        for org in page.items:
            if str(org.get("created_at", "")) >= month_end:
                result.not_yet_existing += 1
                continue
            try:
                if usage.put_invoice(table, _invoice(table, str(org["id"]), month, prices)):
                    result.closed += 1
                else:
                    result.already_closed += 1
            except (StoreError, errors.MailroomError):
                logger().exception("invoice not closed", extra={"org_id": org["id"], "month": month})
                result.errors += 1
        if not page.next_cursor:
            return result
        cursor = page.next_cursor


class MonthNotEnded(ValueError):
    def __init__(self, month: str) -> None:
        super().__init__(
            f"{month} has not ended: only a final statement (--final, one organization) closes it early"
        )


def close_org_month(table: Table, org_id: str, month: str, *, final: bool = False) -> bool:
    """Close one organization's month (the operator's rerun, or with ``final`` its statement of
    the running month so far, for an organization that leaves: the scheduled close of that month
    then finds it written, and what it used afterwards is not invoiced). False: it was closed."""
    if month >= rules.month_of(clock.utcnow()) and not final:
        raise MonthNotEnded(month)
    return usage.put_invoice(table, _invoice(table, org_id, month))


def invoice_view(item: Item) -> dict[str, Any]:
    fields = (
        "id",
        "period",
        "period_start",
        "period_end",
        "plan",
        "plan_version",
        "plan_price",
        "currency",
        "usage",
        "aws_cost",
        "amount_due",
        "status",
        "closed_at",
    )
    view = {name: item.get(name) for name in fields}
    view["usage"] = {k: int(v) for k, v in (item.get("usage") or {}).items()}
    if view["plan_version"] is not None:
        view["plan_version"] = int(view["plan_version"])
    return view


@dataclass(frozen=True, slots=True)
class Listing:
    page: Page
    views: list[dict[str, Any]]


def list_invoices(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Listing:
    page = usage.invoices_page(table, org_id, per_page=per_page, cursor=cursor)
    return Listing(page=page, views=[invoice_view(item) for item in page.items])


def get_invoice(table: Table, org_id: str, invoice_id: str) -> dict[str, Any]:
    """One invoice of the organization (404 for an id that is not one of its invoices)."""
    month = rules.month_of_invoice_id(invoice_id)
    item = usage.get_invoice(table, org_id, month) if month else None
    if item is None or item.get("id") != invoice_id:
        raise errors.not_found("Invoice")
    return invoice_view(item)


def invoice_csv(view: dict[str, Any]) -> str:
    return rules.invoice_csv(view)

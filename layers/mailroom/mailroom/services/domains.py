"""Hosted domains: creation with BYODKIM, DNS verification, scheduled rechecks, rotation, deletion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.dns_lookup import lookup
from mailroom.domain import dns_records
from mailroom.domain.dkim import generate_dkim_key
from mailroom.domain.domain_names import unicode_form
from mailroom.errors import LimitReached
from mailroom.observability import logger, traced
from mailroom.settings import get_settings
from mailroom.store import domains, events, organizations, ses_identities
from mailroom.store.table import Item, Table

# A domain is "failed" rather than "pending" once it has had this long to publish its records.
PENDING_GRACE = timedelta(hours=72)

DEFAULT_LIMITS = {"mailboxes": 50, "aliases": 400, "defquota": 3072, "maxquota": 10240, "quota": 10240}


@dataclass(frozen=True, slots=True)
class NewDomain:
    domain: str
    active: bool = True
    description: str | None = None
    note: str | None = None
    feedback_enabled: bool = True
    limits: dict[str, int] | None = None


def required_records(domain: Item) -> list[dns_records.RequiredRecord]:
    settings = get_settings()
    return dns_records.required_records(
        domain["domain"],
        region=settings.region,
        dkim_selector=domain["dkim_selector"],
        dkim_public_key=domain["dkim_public_key"],
        dmarc_rua=settings.dmarc_rua,
    )


def records_view(domain: Item) -> list[dict[str, Any]]:
    """Required records with their last known status (MISSING before the first check)."""
    known = {(r["type"], r["name"], r["purpose"]): r for r in domain.get("records") or []}
    view = []
    for record in required_records(domain):
        last = known.get((record.type, record.name, record.purpose))
        if last and last.get("value") == record.value:
            view.append(last)
        else:
            view.append(record.as_dict())
    return view


def create_domain(table: Table, org_id: str, request: NewDomain) -> Item:
    org = organizations.get(table, org_id)
    if org is None:
        raise LookupError("organization not found")
    now = clock.utcnow()
    key = generate_dkim_key()
    domain: Item = {
        "id": ids.new_id("dom"),
        "org_id": org_id,
        "domain": request.domain,
        "domain_unicode": unicode_form(request.domain),
        "status": "pending",
        "active": request.active,
        "description": request.description,
        "note": request.note,
        "feedback_enabled": request.feedback_enabled,
        "catch_all": None,
        "limits": {**DEFAULT_LIMITS, **(request.limits or {})},
        "mailbox_count": 0,
        "alias_count": 0,
        "dkim_selector": key.selector,
        "dkim_public_key": key.public_key_b64,
        "dkim_rotated_at": clock.isoformat(now),
        "records": [],
        "check_count": 0,
        "next_check_at": clock.isoformat(now + timedelta(minutes=5)),
        "created_at": clock.isoformat(now),
        "updated_at": clock.isoformat(now),
    }
    # Claim the name first: an SES identity must never be touched for a name another tenant holds.
    domains.create(table, domain, domain_limit=int(org.get("limits", {}).get("domains", 10)))
    try:
        ses_identities.create(request.domain, key, mail_from=dns_records.mail_from_domain(request.domain))
    except Exception:
        domains.delete(table, domain)
        raise
    return domain


def add_domain(table: Table, org_id: str, request: NewDomain) -> Item:
    """``create_domain`` for an API request: every refusal as the error the client gets (both API
    surfaces add domains through here)."""
    org = organizations.get(table, org_id) or {}
    storage_mb = int((org.get("limits") or {}).get("storage_mb", 0))
    quota = (request.limits or {}).get("quota", DEFAULT_LIMITS["quota"])
    if storage_mb and quota > storage_mb:
        raise errors.validation(
            f"quota {quota} MB exceeds the organization's storage of {storage_mb} MB", field="quota"
        )
    try:
        return create_domain(table, org_id, request)
    except domains.DomainTaken as taken:
        if taken.same_org:
            raise errors.conflict(
                f"{request.domain} is already in this organization", code="domain_exists"
            ) from taken
        raise errors.conflict(
            f"{request.domain} is hosted by another organization",
            code="domain_taken",
            hint="Remove it there first, or contact the operator.",
        ) from taken
    except domains.DomainLimitReached as limit:
        raise LimitReached(
            "domain_limit_reached",
            "The organization has reached its domain limit.",
            hint="Delete a domain or raise the organization's limit.",
        ) from limit


def remove_domain(table: Table, domain: Item) -> None:
    """``delete_domain`` for an API request: 409 domain_not_empty while it still has addresses."""
    try:
        delete_domain(table, domain)
    except domains.DomainNotEmpty as exc:
        raise errors.conflict(
            f"{domain['domain']} still has mailboxes, aliases or pending invites",
            code="domain_not_empty",
            hint="Delete its mailboxes and aliases first; pending invites are released when they expire.",
        ) from exc


def delete_domain(table: Table, domain: Item) -> None:
    domains.delete(table, domain)  # refuses while mailboxes or aliases remain
    try:
        ses_identities.delete(domain["domain"])
    except Exception:
        # The tenant data is gone; an orphaned identity only lingers in SES. Loud, not fatal.
        logger().exception("SES identity not deleted", extra={"domain": domain["domain"]})


def rotate_dkim(table: Table, domain: Item) -> Item:
    key = generate_dkim_key()
    ses_identities.rotate_dkim(domain["domain"], key)
    now = clock.now_iso()
    return domains.update(
        table,
        domain["org_id"],
        domain["id"],
        {
            "dkim_selector": key.selector,
            "dkim_public_key": key.public_key_b64,
            "dkim_rotated_at": now,
            "updated_at": now,
        },
    )


def _next_check(domain: Item, *, verified: bool, now: datetime) -> datetime:
    """Verified domains are rechecked daily; pending ones hourly at first, backing off with age."""
    if verified:
        return now + timedelta(hours=24)
    age = now - clock.parse_iso(domain["created_at"])
    if age < timedelta(hours=24):
        return now + timedelta(hours=1)
    if age < timedelta(days=7):
        return now + timedelta(hours=6)
    return now + timedelta(hours=24)


def _status(judged: list[dict[str, Any]], domain: Item, now: datetime) -> str:
    if all(r["status"] == "VALID" for r in judged):
        return "verified"
    if any(r["status"] == "INVALID" for r in judged):
        return "failed"
    if now - clock.parse_iso(domain["created_at"]) > PENDING_GRACE:
        return "failed"
    return "pending"


def run_check(table: Table, domain: Item, *, now: datetime | None = None, trigger: str = "api") -> Item:
    """Look every required record up, store the check and the outcome; emit ``domain.verified`` once."""
    now = now or clock.utcnow()
    started = clock.isoformat(now)
    records = required_records(domain)
    found = lookup([(r.type, r.name) for r in records], server=get_settings().dns_resolver)
    judged = dns_records.judge_all(records, found.answers)
    status = _status(judged, domain, now)
    verified = status == "verified"
    check: Item = {
        "id": ids.new_id("chk"),
        "domain_id": domain["id"],
        "domain": domain["domain"],
        "trigger": trigger,
        "status": "completed",
        "result": status,
        "records": judged,
        "errors": found.errors,
        "started_at": started,
        "completed_at": clock.now_iso(),
        "ttl": int(now.timestamp()) + 30 * 86400,
    }
    fields: dict[str, Any] = {
        "records": judged,
        "status": status,
        "last_checked_at": started,
        "next_check_at": clock.isoformat(_next_check(domain, verified=verified, now=now)),
        "updated_at": started,
    }
    if verified and not domain.get("verified_at"):
        fields["verified_at"] = started
    event = None
    if verified and not domain.get("verified_event_id"):
        updated_view = domain_view({**domain, **fields})
        event = events.new_event(domain["org_id"], "domain.verified", updated_view)
    domains.record_check(table, domain, fields=fields, check=check, event=event)
    return check


@traced
def recheck_due(table: Table, *, now: datetime | None = None, max_domains: int = 500) -> dict[str, int]:
    """The scheduled recheck: every domain whose next check time has come, across organizations."""
    from mailroom.store import keys

    now = now or clock.utcnow()
    now_iso = clock.isoformat(now)
    counts = {"checked": 0, "verified": 0, "errors": 0}
    for shard in range(keys.RECHECK_SHARDS):
        cursor = None
        while counts["checked"] < max_domains:
            page = domains.due_for_recheck(table, now_iso=now_iso, shard=shard, per_page=50, cursor=cursor)
            for indexed in page.items:
                domain = domains.get(table, indexed["org_id"], indexed["id"])  # consistent read
                if domain is None or domain.get("next_check_at", "") > now_iso:
                    continue
                try:
                    check = run_check(table, domain, now=now, trigger="schedule")
                except Exception:
                    counts["errors"] += 1
                    logger().exception("scheduled DNS check failed", extra={"domain_id": domain["id"]})
                    continue
                counts["checked"] += 1
                counts["verified"] += check["result"] == "verified"
            cursor = page.next_cursor
            if cursor is None:
                break
    return counts


def domain_view(domain: Item) -> dict[str, Any]:
    limits = {**DEFAULT_LIMITS, **(domain.get("limits") or {})}
    return {
        "id": domain["id"],
        "domain": domain["domain"],
        "domain_unicode": domain.get("domain_unicode") or domain["domain"],
        "status": domain["status"],
        "active": bool(domain.get("active", True)),
        "description": domain.get("description"),
        "note": domain.get("note"),
        "catch_all": domain.get("catch_all"),
        "feedback_enabled": bool(domain.get("feedback_enabled", True)),
        **{name: int(limits[name]) for name in DEFAULT_LIMITS},
        "mailbox_count": int(domain.get("mailbox_count", 0)),
        "alias_count": int(domain.get("alias_count", 0)),
        "dkim_selector": domain["dkim_selector"],
        "mail_from_domain": dns_records.mail_from_domain(domain["domain"]),
        "verified_at": domain.get("verified_at"),
        "last_checked_at": domain.get("last_checked_at"),
        "next_check_at": domain.get("next_check_at"),
        "created_at": domain["created_at"],
        "updated_at": domain["updated_at"],
    }


def spam_summary(days: list[dict[str, Any]]) -> dict[str, Any]:
    totals = {
        name: sum(d[name] for d in days)
        for name in (
            "inbound_total",
            "inbound_spam",
            "inbound_virus",
            "inbound_dropped",
            "outbound_total",
            "outbound_bounces",
            "outbound_complaints",
        )
    }

    def rate(part: str, whole: str) -> float:
        return round(totals[part] / totals[whole], 6) if totals[whole] else 0.0

    return {
        **totals,
        "spam_rate": rate("inbound_spam", "inbound_total"),
        "virus_rate": rate("inbound_virus", "inbound_total"),
        "bounce_rate": rate("outbound_bounces", "outbound_total"),
        "complaint_rate": rate("outbound_complaints", "outbound_total"),
    }


def window_days(days: int, now: datetime | None = None) -> tuple[str, str]:
    now = now or clock.utcnow()
    first = (now - timedelta(days=max(1, days) - 1)).date().isoformat()
    return first, now.date().isoformat()

"""Hosted domains: creation with BYODKIM, DNS verification, scheduled rechecks, rotation, deletion."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.dns_lookup import lookup
from mailroom.domain import dns_records
from mailroom.domain.dkim import generate_dkim_key
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain, unicode_form
from mailroom.errors import LimitReached, MailroomError
from mailroom.observability import logger, traced
from mailroom.settings import get_settings
from mailroom.store import addresses, domain_metrics, domains, events, organizations, ses_identities
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

# A domain is "failed" rather than "pending" once it has had this long to publish its records.
PENDING_GRACE = timedelta(hours=72)

_LOCAL_PART_RE = re.compile(r"^[a-zA-Z0-9._%+-]{1,64}$")

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


def check_quotas(limits: dict[str, int]) -> str | None:
    """What is inconsistent in a domain's quota limits (over the defaults), or None."""
    merged = {**DEFAULT_LIMITS, **limits}
    if merged["defquota"] > merged["maxquota"]:
        return "defquota cannot exceed maxquota"
    if merged["maxquota"] > merged["quota"]:
        return "maxquota cannot exceed quota"
    return None


def org_domain_limit(org: Item) -> int:
    return int((org.get("limits") or {}).get("domains", organizations.DEFAULT_LIMITS["domains"]))


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
    domains.create(table, domain, org=org, domain_limit=org_domain_limit(org))
    try:
        ses_identities.create(request.domain, key, mail_from=dns_records.mail_from_domain(request.domain))
    except Exception:
        domains.delete(table, domain)
        raise
    return domain


def domain_limit_reached(limit: int, *, needed: int = 1) -> MailroomError:
    message = "The organization has reached its domain limit."
    if needed > 1:
        message = f"The batch needs {needed} domains; the organization's limit is {limit} domains."
    return LimitReached(
        "domain_limit_reached",
        message,
        hint="Delete a domain or raise the organization's limit.",
    )


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
        raise _taken(request.domain, same_org=taken.same_org) from taken
    except domains.DomainLimitReached as refused:
        # The transaction's condition refused it: the count is at the limit, or the limit changed
        # since it was read (then the request may pass with the new one).
        now = organizations.get(table, org_id) or {}
        if int(now.get("domain_count", 0)) >= org_domain_limit(now):
            raise domain_limit_reached(org_domain_limit(now)) from refused
        raise errors.concurrent_update() from refused


def _taken(name: str, *, same_org: bool) -> MailroomError:
    if same_org:
        return errors.conflict(f"{name} is already in this organization", code="domain_exists")
    return errors.conflict(
        f"{name} is hosted by another organization",
        code="domain_taken",
        hint="Remove it there first, or contact the operator.",
    )


# --- the API's use cases ----------------------------------------------------------------------------


def load_domain(table: Table, org_id: str, ref: str) -> Item:
    """One of the organization's own domains, by id (``dom_...``) or by name (any case, unicode or
    punycode; the mailcow-style paths), else 404.

    A name costs one more GetItem: its routing claim (``DOMAIN#<name>``), which says which
    organization hosts it. A name another organization hosts is a 404 like an unknown one, so a
    name reveals nothing about other tenants. Ids and names cannot be confused: a name has a dot and no
    underscore, an organization's domain id neither."""
    if ids.is_id(ref, "dom") or "." not in ref:
        domain = domains.get(table, org_id, ref)
    else:
        try:
            name = normalize_domain(ref)
        except InvalidDomainName:
            raise errors.not_found("Domain") from None  # no domain can have this name
        domain = domains.get_by_name(table, org_id, name)
    # The platform domain's item only counts the organization's inboxes on it: the domain is the
    # operator's, so it is none of the organization's domains to read, change or delete.
    if domain is None or domain.get("platform"):
        raise errors.not_found("Domain")
    return domain


def list_domains(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    """A page of the organization's domains and how many it has (a maintained count)."""
    page = domains.list_page(table, org_id, per_page=per_page, cursor=cursor)
    org = organizations.get(table, org_id) or {}
    return page, int(org.get("domain_count", 0))


@dataclass(slots=True)
class BulkRow:
    """One row of ``domains:bulk-add``: ``valid``/``invalid`` after validation, then ``created`` or
    ``failed`` (a concurrent request took the name or the room meanwhile)."""

    index: int
    domain: str
    status: str
    error: dict[str, str] | None = None
    data: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        view = {"index": self.index, "domain": self.domain, "status": self.status, "error": self.error}
        if self.data is not None:
            view["data"] = self.data
        return view


def validate_batch(table: Table, org_id: str, requests: list[NewDomain]) -> list[BulkRow]:
    """Each row checked against the batch (duplicates) and the hosted names (taken)."""
    rows: list[BulkRow] = []
    seen: set[str] = set()
    for index, request in enumerate(requests):
        error = None
        if request.domain in seen:
            error = {
                "code": "duplicate_row",
                "message": f"{request.domain} appears more than once in the batch",
            }
        else:
            claim = domains.claim_of(table, request.domain)
            if claim is not None:
                code = "domain_exists" if claim["org_id"] == org_id else "domain_taken"
                error = {"code": code, "message": f"{request.domain} is already hosted"}
        seen.add(request.domain)
        rows.append(BulkRow(index, request.domain, "invalid" if error else "valid", error))
    return rows


def add_batch(table: Table, org_id: str, requests: list[NewDomain], rows: list[BulkRow]) -> int:
    """Create every row of a valid batch (``validate_batch`` found no invalid row); returns how many
    were created. Each domain has its own SES identity, so each is its own transaction: a row a
    concurrent request beat is ``failed`` with the reason, and the others are still created."""
    org = organizations.get(table, org_id) or {}
    limit = org_domain_limit(org)
    if int(org.get("domain_count", 0)) + len(rows) > limit:
        raise domain_limit_reached(limit, needed=len(rows))
    created = 0
    for row, request in zip(rows, requests, strict=True):
        try:
            domain = add_domain(table, org_id, request)
        except MailroomError as exc:
            row.status, row.error = "failed", {"code": exc.code, "message": exc.message}
            continue
        created += 1
        row.status, row.data = "created", domain_view(domain)
    return created


def update_domain(table: Table, domain: Item, *, limits: dict[str, int], fields: dict[str, Any]) -> Item:
    """Change limits (merged over the current ones) and plain ``fields`` (active, description,
    feedback_enabled). Limits can never go below what the domain already uses: a condition of the
    write, so a mailbox created meanwhile refuses the update instead of ending up over the limit."""
    merged = {**DEFAULT_LIMITS, **(domain.get("limits") or {}), **limits}
    inconsistent = check_quotas(merged)
    if inconsistent:
        raise errors.validation(inconsistent, field="quota")
    error = _below_usage(domain, merged)
    if error:
        raise error
    try:
        return domains.update_limits(
            table, domain["org_id"], domain["id"], merged, {**fields, "updated_at": clock.now_iso()}
        )
    except domains.DomainBelowUsage as refused:
        current = load_domain(table, domain["org_id"], domain["id"])
        raise (_below_usage(current, merged) or errors.concurrent_update()) from refused


def renamed(name: str) -> MailroomError:
    """A full update naming another domain than the one it replaces (a domain keeps its name)."""
    return errors.validation(
        f"the body names another domain than {name}: a domain cannot be renamed", field="domain"
    )


def _below_usage(domain: Item, limits: dict[str, int]) -> MailroomError | None:
    for limit, counter, what in (
        ("mailboxes", "mailbox_count", "the number of mailboxes the domain has"),
        ("aliases", "alias_count", "the number of aliases the domain has"),
        ("quota", "quota_allocated_mb", "the sum of the quotas of the domain's mailboxes"),
    ):
        if limits[limit] < int(domain.get(counter, 0)):
            return errors.validation(f"{limit} cannot go below {what}", field=limit)
    return None


def set_note(table: Table, domain: Item, note: str | None) -> Item:
    return _set(table, domain, {"note": note})


def set_catch_all(table: Table, domain: Item, raw: str | None) -> Item:
    """Where mail for unknown recipients of the domain goes (``None`` turns it off). A target on
    one of the organization's own domains must be an address it has, or mail would vanish."""
    target = None
    if raw is not None:
        target = _catch_all_address(raw)
        org_id = domain["org_id"]
        target_domain = target.rpartition("@")[2]
        if (
            domains.get_by_name(table, org_id, target_domain) is not None
            and addresses.resolve(table, org_id, target) is None
        ):
            raise errors.validation(
                f"{target} is not a mailbox or alias of this organization",
                field="catch_all",
                code="unknown_target",
            )
    return _set(table, domain, {"catch_all": target})


def _catch_all_address(raw: str) -> str:
    local, at, host = raw.strip().rpartition("@")
    if not at or not _LOCAL_PART_RE.match(local):
        raise errors.validation(
            "catch_all must be an email address (local part a-zA-Z0-9._%+-)", field="catch_all"
        )
    try:
        return f"{local}@{normalize_domain(host)}"
    except InvalidDomainName as exc:
        raise errors.validation(f"catch_all domain: {exc}", field="catch_all") from exc


def _set(table: Table, domain: Item, fields: dict[str, Any]) -> Item:
    try:
        return domains.update(
            table, domain["org_id"], domain["id"], {**fields, "updated_at": clock.now_iso()}
        )
    except ConditionFailed as gone:  # deleted since it was read
        raise errors.not_found("Domain") from gone


def load_check(table: Table, org_id: str, check_id: str) -> Item:
    check = domains.get_check(table, org_id, check_id)
    if check is None:
        raise errors.not_found("DNS check")
    return check


def check_view(check: Item) -> dict[str, Any]:
    return {
        name: check.get(name)
        for name in (
            "id",
            "domain_id",
            "domain",
            "trigger",
            "status",
            "result",
            "records",
            "errors",
            "started_at",
            "completed_at",
        )
    }


@dataclass(frozen=True, slots=True)
class Metrics:
    first_day: str
    last_day: str
    days: list[dict[str, Any]]


def spam_metrics(table: Table, domain: Item, days: int) -> Metrics:
    """The domain's daily counters over the last ``days`` days (today included; quiet days absent)."""
    first, last = window_days(days)
    daily = domain_metrics.days(table, domain["org_id"], domain["id"], first_day=first, last_day=last)
    return Metrics(first_day=first, last_day=last, days=daily)


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

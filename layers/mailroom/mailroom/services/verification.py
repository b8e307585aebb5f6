"""Email verification (``POST /api/v1/verify``) and the credits it consumes.

One verification: syntax and normalization, the name checks (disposable, role, free provider, a
typo suggestion), DNS (MX or the A/AAAA fallback, cached per domain: ``mailroom.mail_dns``), and on
request an SMTP probe (``mailroom.smtp_probe``). ``domain.verification.verdict`` turns the results
into a status.

Credits: each organization has a monthly allowance: its plan's ``verify_credits`` limit (with the
organization's override on top; docs/plans.md), else the organization item's
``verify_monthly_credits``, else ``MAILROOM_VERIFY_MONTHLY_CREDITS``. A request with none left is
refused with 402 ``insufficient_credits`` before any work starts; a verification consumes its credit
in the one conditional write that records it (the month's tally per status), so two requests racing for the
last credit cannot both get a result. 402 rather than 429: retrying after a short wait cannot
succeed; the allowance renewing (the first of next month, UTC) or growing can.

SMTP probes are the abusable part (a tenant could make the platform knock on any mail server), so
they are rate-limited per organization (429 before any work) and per target domain across every
organization (over it, the probe is skipped and answers ``unknown`` with ``smtp_rate_limited``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailroom import errors
from mailroom.domain.verification import (
    NOT_PROBED,
    Probe,
    Smtp,
    Status,
    Verdict,
    check_syntax,
    verdict,
)
from mailroom.mail_dns import MailDns, shared
from mailroom.settings import Settings, get_settings
from mailroom.smtp_probe import ProbeSettings, probe
from mailroom.store import keys, ratelimits
from mailroom.store import verification as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table

CREDITS_RETENTION_SECONDS = 400 * 86400  # a month's tally outlives the month by a year and more


# --- credits ----------------------------------------------------------------------------------------


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def _next_month(moment: datetime) -> datetime:
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Credits:
    month: str
    allowance: int
    used: int
    resets_at: datetime
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return max(self.allowance - self.used, 0)

    def view(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "allowance": self.allowance,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": self.resets_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "verified": {s.value: self.by_status.get(s.value, 0) for s in Status},
        }


def _allowance(org: Item | None, settings: Settings) -> int:
    planned = ((org or {}).get("limits") or {}).get("verify_credits")
    if planned is not None:
        return int(planned)
    configured = (org or {}).get("verify_monthly_credits")
    return int(configured) if configured is not None else settings.verify_monthly_credits


def allowance_of(org: Item | None) -> int:
    """The organization's monthly verification allowance (see the module docstring)."""
    return _allowance(org, get_settings())


def credits_of(table: Table, org_id: str, *, now: datetime | None = None) -> Credits:
    """The month's allowance, what was used and what is left (two reads in one BatchGetItem)."""
    moment = now or datetime.now(UTC)
    month = month_of(moment)
    found = {
        item["SK"]: item
        for item in table.batch_get(
            [(keys.org_pk(org_id), keys.ORG_SK), (keys.org_pk(org_id), keys.verify_credits_sk(month))]
        )
    }
    tally = found.get(keys.verify_credits_sk(month)) or {}
    return Credits(
        month=month,
        allowance=_allowance(found.get(keys.ORG_SK), get_settings()),
        used=int(tally.get("used", 0)),
        resets_at=_next_month(moment),
        by_status={k.removeprefix("status_"): int(v) for k, v in tally.items() if k.startswith("status_")},
    )


def insufficient(credits: Credits, wanted: int = 1) -> errors.PaymentRequired:
    return errors.PaymentRequired(
        "insufficient_credits",
        f"This needs {wanted} verification credit{'s' if wanted != 1 else ''}; "
        f"{credits.remaining} of {credits.allowance} are left for {credits.month}.",
        hint=f"Credits renew at {credits.resets_at:%Y-%m-%dT%H:%M:%SZ}; an operator can raise the allowance.",
    )


def require_credits(credits: Credits, wanted: int) -> None:
    if credits.remaining < wanted:
        raise insufficient(credits, wanted)


def consume(table: Table, org_id: str, credits: Credits, tally: dict[str, int]) -> None:
    """Take the credits and record the work in one conditional write (402 if another request took
    them first: the work's result is then not handed out)."""
    try:
        store.consume(
            table,
            org_id,
            credits.month,
            allowance=credits.allowance,
            tally=tally,
            expires_at=int(credits.resets_at.timestamp()) + CREDITS_RETENTION_SECONDS,
        )
    except ConditionFailed as taken:
        raise insufficient(credits_of(table, org_id), sum(tally.values())) from taken


# --- one verification -------------------------------------------------------------------------------


def probe_settings(settings: Settings) -> ProbeSettings | None:
    """None where the deployment does not probe (the default: see docs/verification.md)."""
    if not settings.verify_probe_enabled:
        return None
    return ProbeSettings(
        port=settings.verify_probe_port,
        mail_from=settings.verify_probe_sender or f"verify@{settings.platform_domain}",
        helo=settings.verify_probe_helo or settings.platform_domain,
        timeout=float(settings.verify_probe_timeout_seconds),
        allow_private=settings.verify_allow_private,
    )


PROBE_DISABLED = Probe(
    Smtp.UNKNOWN,
    reason="smtp_probe_disabled",
    detail="this deployment does not probe mail servers (outbound port 25 is blocked from AWS Lambda "
    "by default; an operator can enable it, see docs/verification.md)",
)


@dataclass
class Verifier:
    """Verifies addresses with one DNS cache; ``may_probe(domain)`` is the per-domain rate gate."""

    dns: MailDns
    probing: ProbeSettings | None
    may_probe: Callable[[str], bool]

    async def verify(self, email: str, *, smtp: bool) -> Verdict:
        syntax = check_syntax(email)
        if not syntax.valid or syntax.ascii_domain is None:
            return verdict(syntax, None)
        domain = syntax.ascii_domain
        host = await self.dns.mail_host(domain)
        outcome = NOT_PROBED
        if smtp:
            outcome = await self._probe(syntax.normalized or email, domain, host.hosts)
        return verdict(syntax, host, outcome)

    async def _probe(self, address: str, domain: str, hosts: tuple[str, ...] | None) -> Probe:
        if not hosts:
            return Probe(Smtp.SKIPPED)  # undeliverable or DNS failed: nothing to ask
        if self.probing is None:
            return PROBE_DISABLED
        if not self.may_probe(domain):
            return Probe(
                Smtp.UNKNOWN,
                reason="smtp_rate_limited",
                detail=f"the probe budget of this minute for {domain} (or, in a bulk job, for the "
                "organization) is spent; try again later",
            )
        local, _, _ = address.rpartition("@")
        return await probe(self.dns, f"{local}@{domain}", domain, hosts, self.probing)


def domain_gate(table: Table, settings: Settings) -> Callable[[str], bool]:
    def may_probe(domain: str) -> bool:
        window = store.probe_domain_hit(
            table, domain, limit=settings.verify_probe_domain_per_minute, now=time.time()
        )
        return not window.exceeded

    return may_probe


def bulk_gate(table: Table, org_id: str, settings: Settings) -> Callable[[str], bool]:
    """A bulk job's probes count against the organization's window too (one request can name
    100,000 addresses: without it a job would be the scanner the per-request limit prevents); over
    either window the probe is skipped (``unknown``, ``smtp_rate_limited``) rather than the job refused."""
    by_domain = domain_gate(table, settings)

    def may_probe(domain: str) -> bool:
        window = ratelimits.hit(
            table, org_id, "verify-probe", limit=settings.verify_probe_org_per_minute, now=time.time()
        )
        return not window.exceeded and by_domain(domain)

    return may_probe


def verifier(table: Table, *, bulk_org: str | None = None) -> Verifier:
    """The verifier of one request, or of a bulk job's chunk (``bulk_org``: its organization)."""
    settings = get_settings()
    gate = domain_gate(table, settings) if bulk_org is None else bulk_gate(table, bulk_org, settings)
    return Verifier(shared(settings.dns_resolver), probe_settings(settings), gate)


def verdict_view(result: Verdict) -> dict[str, Any]:
    return {
        "email": result.email,
        "status": result.status.value,
        "reasons": [{"code": r.code, "message": r.message} for r in result.reasons],
        "checks": dict(result.checks),
        "normalized": result.normalized,
        "suggestion": result.suggestion,
    }


def _limit_probes(table: Table, org_id: str, settings: Settings) -> None:
    window = ratelimits.hit(
        table, org_id, "verify-probe", limit=settings.verify_probe_org_per_minute, now=time.time()
    )
    if window.exceeded:
        raise errors.TooManyRequests(
            "probe_rate_limited",
            f"At most {window.limit} SMTP probes a minute per organization.",
            hint="Retry after the Retry-After seconds, or verify without smtp.",
            retry_after=max(1, window.resets_at - int(time.time())),
        )


async def verify_one(table: Table, org_id: str, email: str, *, smtp: bool) -> dict[str, Any]:
    """Verify one address: 402 with no credit left and 429 over the probe rate, before any work."""
    credits = credits_of(table, org_id)
    require_credits(credits, 1)
    settings = get_settings()
    if smtp and settings.verify_probe_enabled:
        _limit_probes(table, org_id, settings)
    result = await verifier(table).verify(email, smtp=smtp)
    consume(table, org_id, credits, {result.status.value: 1})
    return verdict_view(result)

"""Email verification, the pure part: syntax and normalization, what the address's name says about
it (disposable, role account, free provider, a likely typo), and the verdict from every check.

DNS and the SMTP probe are I/O (``mailroom.mail_dns``, ``mailroom.smtp_probe``); their results come
in here as plain values, so the verdict rules are one function a unit test can read.

The verdict, most decisive first:

- ``undeliverable``: the syntax is wrong, the domain does not exist, it has no mail host (no MX and
  no A/AAAA, or a null MX, RFC 7505), or the mailbox's server refused the recipient (5xx on RCPT).
- ``risky``: a disposable domain (known from its name alone, whatever DNS says).
- ``unknown``: DNS could not answer (timeout, SERVFAIL), or a probe was asked for and could not give
  an answer (port 25 blocked, a 4xx such as greylisting, a rate limit).
- ``risky``: a role account (``info@``), or a catch-all domain (every address is accepted, so the
  mailbox's existence is unknowable).
- ``deliverable``: everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import email_validator


class Status(StrEnum):
    DELIVERABLE = "deliverable"
    UNDELIVERABLE = "undeliverable"
    RISKY = "risky"
    UNKNOWN = "unknown"


class Smtp(StrEnum):
    """What the SMTP probe learnt about the mailbox."""

    NOT_REQUESTED = "not_requested"
    ACCEPTED = "accepted"  # 250/251 on RCPT TO
    REJECTED = "rejected"  # 5xx on RCPT TO
    UNKNOWN = "unknown"  # no answer: see the reasons
    SKIPPED = "skipped"  # asked for, but there was no mail host to ask (see the other reasons)


# Mailbox names that reach a function or a team, not a person (RFC 2142 and common practice).
ROLE_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "abuse", "accounting", "accounts", "admin", "administrator", "billing", "careers", "compliance",
        "contact", "customerservice", "devnull", "dns", "enquiries", "ftp", "help", "helpdesk", "hello",
        "hostmaster", "hr", "info", "inquiries", "it", "jobs", "legal", "list", "mail", "mailer-daemon",
        "marketing", "media", "news", "newsletter", "no-reply", "noc", "noreply", "office", "orders",
        "postmaster", "press", "privacy", "root", "sales", "security", "service", "support", "sysadmin",
        "team", "usenet", "uucp", "webmaster", "www",
    }
)  # fmt: skip

# Consumer mailbox providers (anyone can open an account): a business lead on one of these is not
# a company address. Also the candidates for typo suggestions.
FREE_PROVIDERS: frozenset[str] = frozenset(
    {
        "aol.com", "gmail.com", "googlemail.com", "gmx.com", "gmx.de", "gmx.net", "hotmail.com",
        "hotmail.co.uk", "hotmail.fr", "icloud.com", "live.com", "mac.com", "mail.com", "mail.ru",
        "me.com", "msn.com", "outlook.com", "proton.me", "protonmail.com", "qq.com", "web.de",
        "yahoo.co.uk", "yahoo.com", "yahoo.fr", "yandex.com", "yandex.ru", "zoho.com", "fastmail.com",
        "tutanota.com", "hey.com", "163.com", "126.com", "comcast.net", "verizon.net", "att.net",
        "orange.fr", "free.fr", "laposte.net", "libero.it", "t-online.de", "seznam.cz", "wp.pl",
    }
)  # fmt: skip

# Domains people mistype often, the suggestion's candidates (most used first: ties go to them).
SUGGESTION_DOMAINS: tuple[str, ...] = (
    "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com", "live.com",
    "msn.com", "googlemail.com", "protonmail.com", "proton.me", "gmx.com", "gmx.de", "web.de",
    "mail.ru", "yandex.ru", "comcast.net", "yahoo.co.uk", "hotmail.co.uk", "me.com", "mac.com",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Syntax:
    """An address after syntax checking: ``normalized`` is None when it is not a valid address."""

    original: str
    normalized: str | None
    local_part: str | None
    domain: str | None  # Unicode form, lowercased (what people read)
    ascii_domain: str | None  # the IDNA form (what DNS and SMTP use)
    error: str | None

    @property
    def valid(self) -> bool:
        return self.normalized is not None


def check_syntax(address: str) -> Syntax:
    """RFC 5321/5322 syntax and normalization (internationalized addresses included), no DNS."""
    try:
        checked = email_validator.validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_display_name=False,
            strict=True,  # a local part over 64 octets (RFC 5321 4.5.3.1.1) is refused by servers
        )
    except email_validator.EmailNotValidError as exc:
        return Syntax(address, None, None, None, None, str(exc))
    return Syntax(
        original=address,
        normalized=checked.normalized,
        local_part=checked.local_part,
        domain=checked.domain,
        ascii_domain=checked.ascii_domain,
        error=None,
    )


def _parents(domain: str) -> Iterable[str]:
    """``a.b.example.com`` → itself, ``b.example.com``, ``example.com`` (never a bare TLD)."""
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        yield ".".join(labels[start:])


@lru_cache(maxsize=1)
def _disposable() -> frozenset[str]:
    # Imported on first use: the list is ~10k names, not needed by requests that do not verify.
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


def is_disposable(ascii_domain: str) -> bool:
    """The domain, or a domain it is under, is on the maintained disposable-email list."""
    listed = _disposable()
    return any(name in listed for name in _parents(ascii_domain.lower()))


def is_role(local_part: str) -> bool:
    """``info``, ``Sales+eu``, ``no.reply``: the part before any ``+tag``, case and dots ignored."""
    base = local_part.split("+", 1)[0].lower()
    return base in ROLE_LOCAL_PARTS or base.replace(".", "").replace("_", "-") in ROLE_LOCAL_PARTS


def is_free_provider(ascii_domain: str) -> bool:
    return ascii_domain.lower() in FREE_PROVIDERS


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions: gmial/gmail)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


@lru_cache(maxsize=4096)  # a bulk job asks about the same few domains thousands of times
def suggest_domain(ascii_domain: str) -> str | None:
    """The common provider domain this one is probably a typo of (``gmial.com`` → ``gmail.com``).

    One edit for short names, two from ten characters on; a domain that is itself a known
    provider, or equally close to two candidates, gets no suggestion.
    """
    domain = ascii_domain.lower()
    if domain in FREE_PROVIDERS or domain in SUGGESTION_DOMAINS:
        return None
    allowed = 2 if len(domain) >= 10 else 1
    best: tuple[int, str] | None = None
    tied = False
    for candidate in SUGGESTION_DOMAINS:
        if abs(len(candidate) - len(domain)) > allowed:
            continue
        distance = _distance(domain, candidate)
        if distance > allowed:
            continue
        if best is None or distance < best[0]:
            best, tied = (distance, candidate), False
        elif distance == best[0]:
            tied = True
    return None if best is None or tied else best[1]


@dataclass(frozen=True, slots=True)
class MailHost:
    """What DNS says about where the domain's mail goes (``mailroom.mail_dns``).

    ``exists`` and ``hosts`` are None when DNS could not answer (``error`` says why).
    """

    exists: bool | None
    mx: bool | None  # the domain publishes MX records (a null MX counts)
    null_mx: bool = False  # "MX 0 ." (RFC 7505): the domain accepts no mail
    hosts: tuple[str, ...] | None = ()  # mail hosts, best first (the domain itself on A/AAAA fallback)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    """What the SMTP probe learnt (``mailroom.smtp_probe``)."""

    smtp: Smtp
    catch_all: bool | None = None
    reply: str | None = None  # the server's reply to RCPT TO, for the reasons
    reason: str | None = None  # a code when ``smtp`` is unknown: smtp_unreachable, smtp_rate_limited...
    detail: str | None = None


NOT_PROBED = Probe(Smtp.NOT_REQUESTED)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    email: str
    status: Status
    reasons: list[Reason]
    checks: dict[str, bool | str | None]
    normalized: str | None
    suggestion: str | None
    domain: str | None = None  # the ASCII domain the checks were about (bulk results group on it)


def name_checks(syntax: Syntax) -> tuple[bool, bool, bool, str | None]:
    """(disposable, role, free provider, suggestion): what the address's name alone tells."""
    if syntax.ascii_domain is None or syntax.local_part is None:
        raise ValueError("name checks need a valid address")
    suggestion = suggest_domain(syntax.ascii_domain)
    return (
        is_disposable(syntax.ascii_domain),
        is_role(syntax.local_part),
        is_free_provider(syntax.ascii_domain),
        f"{syntax.local_part}@{suggestion}" if suggestion else None,
    )


def verdict(syntax: Syntax, host: MailHost | None, probe: Probe = NOT_PROBED) -> Verdict:
    """The status and its reasons from every check's result (``host`` is None for invalid syntax)."""
    if not syntax.valid or host is None:
        return Verdict(
            email=syntax.original,
            status=Status.UNDELIVERABLE,
            reasons=[Reason("invalid_syntax", syntax.error or "not an email address")],
            checks={
                "syntax": False, "domain": None, "mx": None, "disposable": None, "role": None,
                "free_provider": None, "catch_all": None, "smtp": Smtp.NOT_REQUESTED.value,
            },
            normalized=None,
            suggestion=None,
        )  # fmt: skip
    disposable, role, free, suggestion = name_checks(syntax)
    domain = syntax.ascii_domain or ""
    undeliverable: list[Reason] = []
    unknown: list[Reason] = []
    risky: list[Reason] = []
    if host.exists is False:
        undeliverable.append(Reason("domain_not_found", f"{domain} does not exist in DNS (NXDOMAIN)"))
    elif host.null_mx:
        undeliverable.append(Reason("null_mx", f"{domain} publishes a null MX: it accepts no mail"))
    elif host.exists and not host.hosts:
        undeliverable.append(Reason("no_mail_host", f"{domain} has no MX and no A/AAAA record"))
    if host.error:
        unknown.append(Reason("dns_unavailable", f"DNS could not answer for {domain}: {host.error}"))
    if probe.smtp is Smtp.REJECTED:
        undeliverable.append(Reason("mailbox_rejected", f"the mail server refused it: {probe.reply}"))
    elif probe.smtp is Smtp.UNKNOWN:
        unknown.append(Reason(probe.reason or "smtp_unknown", probe.detail or "the probe got no answer"))
    if disposable:
        risky.append(Reason("disposable", f"{domain} is a disposable (throwaway) address provider"))
    if role:
        risky.append(Reason("role_account", f"{syntax.local_part}@ is a role address, not a person"))
    if probe.catch_all:
        risky.append(Reason("catch_all", f"{domain} accepts every address: this one cannot be confirmed"))
    # Not a risk: RFC 5321 section 5.1 delivers to the A/AAAA address; said so the caller knows.
    notes = [Reason("implicit_mx", f"{domain} has no MX: mail goes to its A/AAAA address")]
    if not (host.mx is False and host.hosts):
        notes = []

    if undeliverable:
        status = Status.UNDELIVERABLE
    elif disposable:
        status = Status.RISKY
    elif unknown:
        status = Status.UNKNOWN
    elif risky:
        status = Status.RISKY
    else:
        status = Status.DELIVERABLE
    reasons = undeliverable + unknown + risky + notes
    if suggestion:
        reasons.append(Reason("possible_typo", f"did you mean {suggestion}?"))
    return Verdict(
        email=syntax.original,
        status=status,
        reasons=reasons,
        checks={
            "syntax": True,
            "domain": host.exists,
            "mx": host.mx,
            "disposable": disposable,
            "role": role,
            "free_provider": free,
            "catch_all": probe.catch_all,
            "smtp": probe.smtp.value,
        },
        normalized=syntax.normalized,
        suggestion=suggestion,
        domain=domain,
    )

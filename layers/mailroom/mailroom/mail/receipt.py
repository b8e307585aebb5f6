"""What SES says about a received message: verdicts, envelope recipients, time of receipt.

Two sources carry it. The receipt event of the rule's Lambda action has it as data
(``receipt.spamVerdict`` ...). The object the rule's S3 action stored has it as the headers SES
prepends on receipt (``Received: ... by inbound-smtp.<region>.amazonaws.com with SMTP id <id> for
<recipient>; <date>``, ``X-SES-Spam-Verdict``, ``X-SES-Virus-Verdict``, ``Authentication-Results:
amazonses.com; spf=...; dkim=...; dmarc=...``), which is all an S3 ``ObjectCreated`` event can go by.

SES's headers are the topmost ones: the first occurrence of each name is SES's, and a sender who
forges ``X-SES-Spam-Verdict: PASS`` further down the block is not believed. Pure logic, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

VERDICT_NAMES = ("spam", "virus", "spf", "dkim", "dmarc")
# DMARC policies under which the sender's domain asks receivers not to trust a failing message.
ENFORCING_DMARC_POLICIES = frozenset({"quarantine", "reject"})
_AUTH_TO_VERDICT = {
    "pass": "PASS",
    "fail": "FAIL",
    "softfail": "FAIL",
    "hardfail": "FAIL",
    "neutral": "GRAY",
    "none": "GRAY",
    "policy": "GRAY",
    "temperror": "PROCESSING_FAILED",
    "permerror": "PROCESSING_FAILED",
}
_SMTP_ID_RE = re.compile(r"\bwith\s+\S*SMTP\S*\s+id\s+([A-Za-z0-9]+)", re.IGNORECASE)
_FOR_RE = re.compile(r"\bfor\s+(.+?);", re.IGNORECASE | re.DOTALL)
_AUTH_RE = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([A-Za-z]+)", re.IGNORECASE)
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
MAX_TRACE_HEADER_BYTES = 256 * 1024  # never read more than a header block's limit for the trace


@dataclass(frozen=True, slots=True)
class Verdicts:
    """SES's verdicts (``PASS``, ``FAIL``, ``GRAY``, ``PROCESSING_FAILED``, ``DISABLED``)."""

    spam: str = "PASS"
    virus: str = "PASS"
    spf: str = "PASS"
    dkim: str = "PASS"
    dmarc: str = "PASS"
    dmarc_policy: str | None = None  # lower case; SES reports it with a DMARC FAIL

    @property
    def is_virus(self) -> bool:
        return self.virus == "FAIL"

    @property
    def is_spam(self) -> bool:
        """Spam scan failed, or DMARC failed for a domain that asks for quarantine or rejection (a
        softer answer than rejecting: the message goes to Spam, never away)."""
        return self.spam == "FAIL" or (
            self.dmarc == "FAIL" and (self.dmarc_policy or "") in ENFORCING_DMARC_POLICIES
        )

    def as_item(self) -> dict[str, str]:
        stored = {name: getattr(self, name) for name in VERDICT_NAMES}
        if self.dmarc_policy:
            stored["dmarc_policy"] = self.dmarc_policy
        return stored

    @classmethod
    def from_receipt(cls, receipt: Mapping[str, object]) -> Verdicts:
        """From ``ses.receipt`` of the receipt event (a verdict SES did not send counts as GRAY)."""

        def status(name: str) -> str:
            value = receipt.get(f"{name}Verdict")
            found = value.get("status") if isinstance(value, Mapping) else None
            return str(found).upper() if found else "GRAY"

        policy = receipt.get("dmarcPolicy")
        return cls(
            spam=status("spam"),
            virus=status("virus"),
            spf=status("spf"),
            dkim=status("dkim"),
            dmarc=status("dmarc"),
            dmarc_policy=str(policy).lower() if policy else None,
        )


@dataclass(frozen=True, slots=True)
class Trace:
    """What the headers SES prepended say (empty fields when they are not there)."""

    ses_message_id: str | None = None
    envelope_from: str = ""  # Return-Path (empty for bounces)
    recipients: list[str] = field(default_factory=list)
    received_at: datetime | None = None
    verdicts: Verdicts = field(default_factory=Verdicts)


def header_block(raw: bytes) -> bytes:
    match = _HEADER_END_RE.search(raw, 0, MAX_TRACE_HEADER_BYTES)
    return raw[: match.end()] if match else raw[:MAX_TRACE_HEADER_BYTES]


def _auth_verdicts(value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for method, result in _AUTH_RE.findall(value):
        found.setdefault(method.lower(), _AUTH_TO_VERDICT.get(result.lower(), "GRAY"))
    return found


def trace_of(raw: bytes) -> Trace:
    """SES's trace from a stored message (see the module docstring)."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))
    received = next(
        (str(v) for v in headers.get_all("Received") or [] if "amazonaws.com" in str(v).lower()), ""
    )
    unfolded = " ".join(received.split())
    smtp_id = _SMTP_ID_RE.search(unfolded)
    for_clause = _FOR_RE.search(unfolded)
    recipients = [a.lower() for _, a in getaddresses([for_clause.group(1)]) if "@" in a] if for_clause else []
    received_at = None
    if ";" in unfolded:
        try:
            received_at = parsedate_to_datetime(unfolded.rpartition(";")[2].strip())
        except (TypeError, ValueError, IndexError):
            received_at = None
        if received_at is not None and received_at.tzinfo is None:
            received_at = None
    auth = next(
        (
            _auth_verdicts(str(v))
            for v in headers.get_all("Authentication-Results") or []
            if str(v).strip().lower().startswith("amazonses.com")
        ),
        {},
    )

    def ses_header(name: str) -> str:
        value = headers.get(name)
        return str(value).strip().upper() if value else "GRAY"

    verdicts = Verdicts(
        spam=ses_header("X-SES-Spam-Verdict"),
        virus=ses_header("X-SES-Virus-Verdict"),
        spf=auth.get("spf", "GRAY"),
        dkim=auth.get("dkim", "GRAY"),
        dmarc=auth.get("dmarc", "GRAY"),
    )
    return_path = getaddresses([str(headers.get("Return-Path") or "")])
    return Trace(
        ses_message_id=smtp_id.group(1) if smtp_id else None,
        envelope_from=return_path[0][1].lower() if return_path and "@" in return_path[0][1] else "",
        recipients=list(dict.fromkeys(recipients)),
        received_at=received_at,
        verdicts=verdicts,
    )

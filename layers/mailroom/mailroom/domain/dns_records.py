"""The DNS records a hosted domain needs, and how answers found in DNS are judged.

Records (each ``{type, name, value, priority, status, found, purpose}``):

* MX at the domain → the SES inbound endpoint of the stack's region (receiving);
* MX and SPF TXT at the custom MAIL FROM subdomain (bounces, SPF alignment);
* DKIM TXT at ``<selector>._domainkey`` (Bring-Your-Own-DKIM key);
* DMARC TXT at ``_dmarc``.

Status: ``VALID`` when DNS has what is needed; ``INVALID`` when DNS has something else there (the
values found are shown, so a truncated key or a duplicate SPF record is visible); ``MISSING`` when
nothing is there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAIL_FROM_LABEL = "bounce"


class RecordStatus(StrEnum):
    MISSING = "MISSING"
    VALID = "VALID"
    INVALID = "INVALID"


@dataclass(frozen=True, slots=True)
class RequiredRecord:
    type: str  # MX or TXT
    name: str
    value: str
    priority: int | None
    purpose: str  # inbound_mx, mail_from_mx, spf, dkim, dmarc

    def as_dict(
        self, status: RecordStatus = RecordStatus.MISSING, found: Sequence[str] = ()
    ) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "value": self.value,
            "priority": self.priority,
            "status": status.value,
            "found": list(found) if status is RecordStatus.INVALID else [],
            "purpose": self.purpose,
        }


def mail_from_domain(domain: str) -> str:
    return f"{MAIL_FROM_LABEL}.{domain}"


def required_records(
    domain: str, *, region: str, dkim_selector: str, dkim_public_key: str, dmarc_rua: str | None = None
) -> list[RequiredRecord]:
    mail_from = mail_from_domain(domain)
    dmarc = "v=DMARC1; p=none" + (f"; rua=mailto:{dmarc_rua}" if dmarc_rua else "")
    return [
        RequiredRecord("MX", domain, f"inbound-smtp.{region}.amazonaws.com", 10, "inbound_mx"),
        RequiredRecord("MX", mail_from, f"feedback-smtp.{region}.amazonses.com", 10, "mail_from_mx"),
        RequiredRecord("TXT", mail_from, "v=spf1 include:amazonses.com ~all", None, "spf"),
        RequiredRecord(
            "TXT",
            f"{dkim_selector}._domainkey.{domain}",
            f"v=DKIM1; k=rsa; p={dkim_public_key}",
            None,
            "dkim",
        ),
        RequiredRecord("TXT", f"_dmarc.{domain}", dmarc, None, "dmarc"),
    ]


def _host(value: str) -> str:
    return value.strip().rstrip(".").lower()


def _dkim_tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        key, sep, tag_value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = re.sub(r"\s+", "", tag_value)
    return tags


def judge(record: RequiredRecord, answers: Sequence[str]) -> RecordStatus:
    """Status of one required record given the answers DNS returned for its name and type.

    MX answers are ``"<priority> <host>"``; TXT answers are the record's strings joined.
    """
    if not answers:
        return RecordStatus.MISSING
    if record.type == "MX":
        wanted = _host(record.value)
        hosts = [_host(a.split(None, 1)[-1]) for a in answers]
        return RecordStatus.VALID if wanted in hosts else RecordStatus.INVALID
    if record.purpose == "spf":
        spf = [a for a in answers if a.strip().lower().startswith("v=spf1")]
        if not spf:
            return RecordStatus.MISSING
        # RFC 7208 §3.2: more than one SPF record is a permanent error for receivers.
        if len(spf) > 1:
            return RecordStatus.INVALID
        return (
            RecordStatus.VALID if "include:amazonses.com" in spf[0].lower().split() else RecordStatus.INVALID
        )
    if record.purpose == "dkim":
        wanted_key = _dkim_tags(record.value).get("p")
        keys = [_dkim_tags(a).get("p") for a in answers if "p=" in a]
        return RecordStatus.VALID if keys == [wanted_key] else RecordStatus.INVALID
    if record.purpose == "dmarc":
        dmarc = [a for a in answers if a.strip().lower().startswith("v=dmarc1")]
        if not dmarc:
            return RecordStatus.MISSING
        if len(dmarc) > 1:
            return RecordStatus.INVALID
        policy = _dkim_tags(dmarc[0]).get("p", "").lower()
        return RecordStatus.VALID if policy in {"none", "quarantine", "reject"} else RecordStatus.INVALID
    return RecordStatus.VALID if record.value in answers else RecordStatus.INVALID


def judge_all(
    records: Sequence[RequiredRecord], answers: Mapping[tuple[str, str], Sequence[str]]
) -> list[dict[str, Any]]:
    """Every record with its status and, when INVALID, what was found instead."""
    judged = []
    for record in records:
        found = list(answers.get((record.type, record.name), ()))
        status = judge(record, found)
        if record.purpose in {"spf", "dmarc"}:
            prefix = "v=spf1" if record.purpose == "spf" else "v=dmarc1"
            relevant = [a for a in found if a.strip().lower().startswith(prefix)]
            found = relevant or found
        judged.append(record.as_dict(status, found))
    return judged

"""SES inbound, minus the SMTP: receipt rule matching, the headers SES adds, and the Lambda event.

Matching follows SES: a rule's recipient ``user@example.com`` matches that address, ``example.com``
every address of that domain (not its subdomains), ``.example.com`` every address of its subdomains;
a rule without recipients matches every address. Rules are evaluated in rule-set order; a
``StopAction`` (or a RequestResponse function answering ``STOP_RULE_SET``) ends the evaluation.

Verdicts are PASS unless the message carries ``X-Mailroom-Test-<Spam|Virus|Spf|Dkim|Dmarc>-Verdict``
(value PASS, FAIL, GRAY or PROCESSING_FAILED; ``X-Mailroom-Test-Dmarc-Policy`` sets the DMARC policy
reported with a DMARC FAIL). These headers only exist for tests of the local stack.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from typing import Any

log = logging.getLogger(__name__)

VERDICTS = ("spam", "virus", "spf", "dkim", "dmarc")
VALID_VERDICTS = frozenset({"PASS", "FAIL", "GRAY", "PROCESSING_FAILED"})
_AUTH_RESULT = {"PASS": "pass", "FAIL": "fail", "GRAY": "neutral", "PROCESSING_FAILED": "temperror"}
_COMMON_LIST_HEADERS = {
    "from": "from",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "reply-to": "replyTo",
    "sender": "sender",
}


@dataclass(frozen=True, slots=True)
class ReceiptRule:
    name: str
    enabled: bool
    recipients: tuple[str, ...]
    actions: tuple[dict[str, Any], ...]

    @classmethod
    def from_api(cls, rule: dict[str, Any]) -> ReceiptRule:
        """From a ``Rule`` as SES's API (and the template) spell it."""
        return cls(
            name=str(rule["Name"]),
            enabled=bool(rule.get("Enabled", False)),
            recipients=tuple(str(r) for r in rule.get("Recipients") or ()),
            actions=tuple(rule.get("Actions") or ()),
        )

    def matches(self, address: str) -> bool:
        return self.enabled and (
            not self.recipients or any(recipient_matches(p, address) for p in self.recipients)
        )


def recipient_matches(pattern: str, address: str) -> bool:
    pattern, address = pattern.strip().casefold(), address.strip().casefold()
    if "@" in pattern:
        return pattern == address
    domain = address.rpartition("@")[2]
    if pattern.startswith("."):
        return domain.endswith(pattern) and len(domain) > len(pattern)
    return domain == pattern


def matching_rules(rules: Sequence[ReceiptRule], address: str) -> list[ReceiptRule]:
    return [rule for rule in rules if rule.matches(address)]


def new_message_id() -> str:
    """Shaped like SES's inbound message ids (also the S3 object name)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def verdicts_of(raw: bytes) -> dict[str, str]:
    """Each verdict (PASS unless a test header says otherwise), plus ``dmarcPolicy``."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    result = {}
    for name in VERDICTS:
        value = (headers.get(f"X-Mailroom-Test-{name.capitalize()}-Verdict") or "PASS").strip().upper()
        if value not in VALID_VERDICTS:
            log.warning(
                "ignoring X-Mailroom-Test-%s-Verdict: %r is not one of %s",
                name.capitalize(),
                value,
                sorted(VALID_VERDICTS),
            )
            value = "PASS"
        result[name] = value
    result["dmarcPolicy"] = (headers.get("X-Mailroom-Test-Dmarc-Policy") or "none").strip().lower()
    return result


def with_ses_headers(
    raw: bytes,
    *,
    source: str,
    recipients: Sequence[str],
    message_id: str,
    helo: str,
    peer: str,
    verdicts: dict[str, str],
    region: str,
    received_at: datetime,
) -> bytes:
    """The message as SES stores it: with the trace and verdict headers SES prepends on receipt."""
    from_header = BytesHeaderParser(policy=compat32).parsebytes(raw).get("From") or ""
    from_domain = parseaddr(str(from_header))[1].rpartition("@")[2] or "unknown"
    spf, dkim, dmarc = (_AUTH_RESULT[verdicts[name]] for name in ("spf", "dkim", "dmarc"))
    lines = [
        f"Return-Path: <{source}>",
        f"Received: from {helo} ({peer})\r\n by inbound-smtp.{region}.amazonaws.com"
        f" with SMTP id {message_id}\r\n for {', '.join(recipients)};\r\n {format_datetime(received_at)}",
        f"X-SES-Spam-Verdict: {verdicts['spam']}",
        f"X-SES-Virus-Verdict: {verdicts['virus']}",
        f"Authentication-Results: amazonses.com;\r\n spf={spf} smtp.mailfrom={source};\r\n"
        f" dkim={dkim} header.i=@{from_domain};\r\n dmarc={dmarc} header.from={from_domain};",
    ]
    return ("\r\n".join(lines) + "\r\n").encode() + raw


def mail_object(
    raw: bytes, *, source: str, destination: Sequence[str], message_id: str, timestamp: datetime
) -> dict[str, Any]:
    """``ses.mail`` of the receipt event."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(raw)
    headers = [{"name": name, "value": str(value)} for name, value in parsed.items()]
    common: dict[str, Any] = {}
    if parsed.get("Return-Path"):
        common["returnPath"] = parseaddr(str(parsed["Return-Path"]))[1]
    for header, key in _COMMON_LIST_HEADERS.items():
        values = parsed.get_all(header)
        if values:
            common[key] = [
                formataddr(pair) if pair[0] else pair[1] for pair in getaddresses([str(v) for v in values])
            ]
    for header, key in (("date", "date"), ("message-id", "messageId"), ("subject", "subject")):
        if parsed.get(header) is not None:
            common[key] = str(parsed[header])
    return {
        "timestamp": iso_ms(timestamp),
        "source": source,
        "messageId": message_id,
        "destination": list(destination),
        "headersTruncated": False,
        "headers": headers,
        "commonHeaders": common,
    }


def receipt_object(
    *,
    recipients: Sequence[str],
    verdicts: dict[str, str],
    action: dict[str, Any],
    timestamp: datetime,
    processing_ms: int,
) -> dict[str, Any]:
    """``ses.receipt`` of the receipt event."""
    receipt: dict[str, Any] = {
        "timestamp": iso_ms(timestamp),
        "processingTimeMillis": processing_ms,
        "recipients": list(recipients),
        "spamVerdict": {"status": verdicts["spam"]},
        "virusVerdict": {"status": verdicts["virus"]},
        "spfVerdict": {"status": verdicts["spf"]},
        "dkimVerdict": {"status": verdicts["dkim"]},
        "dmarcVerdict": {"status": verdicts["dmarc"]},
        "action": action,
    }
    if verdicts["dmarc"] == "FAIL":
        receipt["dmarcPolicy"] = verdicts["dmarcPolicy"]
    return receipt


def lambda_event(mail: dict[str, Any], receipt: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {"mail": mail, "receipt": receipt}}
        ]
    }

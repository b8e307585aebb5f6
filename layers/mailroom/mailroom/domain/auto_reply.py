"""Auto-reply (vacation): when a mailbox answers a message by itself, and when it must not. Pure.

The rules of restraint are RFC 3834 (section 2) and RFC 5230 (section 4.5): never answer mail that
is itself automatic (``Auto-Submitted`` other than ``no``), bulk or list mail (``Precedence``, any
``List-*`` header), mail with no return path (bounces), mail from system senders (MAILER-DAEMON,
postmaster, no-reply and the like), mail from the mailbox itself, spam or viruses. At most one reply
per sender per interval is the caller's expiring marker; this module only says whether a message
qualifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mailroom import clock

DEFAULT_INTERVAL_DAYS = 7
MAX_INTERVAL_DAYS = 365
MAX_SUBJECT_CHARS = 998
MAX_BODY_CHARS = 64 * 1024
REPLY_LABEL = "auto-reply"
# Local parts that are a system or a robot, never a person who reads an answer (RFC 3834 5.1 and
# what real mail systems send from).
SYSTEM_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "listserv",
        "majordomo",
        "bounce",
        "bounces",
        "no-reply",
        "noreply",
        "do-not-reply",
        "donotreply",
        "no_reply",
        "daemon",
    }
)
SYSTEM_PREFIXES = ("owner-", "bounce-", "bounces-", "noreply-", "no-reply-")
SYSTEM_SUFFIXES = ("-request", "-owner", "-bounces", "-noreply")


@dataclass(frozen=True, slots=True)
class AutoReply:
    enabled: bool = False
    subject: str | None = None  # None: "Auto: " + the original subject (RFC 5230 4.6)
    text: str | None = None
    html: str | None = None
    start: str | None = None  # ISO 8601 UTC; None: from now
    end: str | None = None  # None: until turned off
    interval_days: int = DEFAULT_INTERVAL_DAYS

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "start": self.start,
            "end": self.end,
            "interval_days": self.interval_days,
        }

    def canonical(self) -> AutoReply:
        """As stored: the bodies without trailing line breaks (a MIME part ends with one anyway, so
        Sieve could not tell them apart), empty ones as None."""
        return replace(
            self,
            subject=self.subject or None,
            text=(self.text or "").rstrip("\r\n") or None,
            html=(self.html or "").rstrip("\r\n") or None,
        )

    def active_at(self, moment: datetime) -> bool:
        stamp = clock.isoformat(moment)
        if not self.enabled:
            return False
        if self.start is not None and stamp < self.start:
            return False
        return self.end is None or stamp < self.end

    def reply_subject(self, original: str) -> str:
        if self.subject:
            return self.subject
        return f"Auto: {original}"[:MAX_SUBJECT_CHARS] if original else "Auto: (no subject)"


def from_item(item: Mapping[str, Any] | None) -> AutoReply:
    if not item:
        return AutoReply()
    return AutoReply(
        enabled=bool(item.get("enabled", False)),
        subject=item.get("subject"),
        text=item.get("text"),
        html=item.get("html"),
        start=item.get("start"),
        end=item.get("end"),
        interval_days=int(item.get("interval_days", DEFAULT_INTERVAL_DAYS)),
    )


def is_system_sender(address: str) -> bool:
    local = address.rpartition("@")[0].lower()
    return local in SYSTEM_LOCAL_PARTS or local.startswith(SYSTEM_PREFIXES) or local.endswith(SYSTEM_SUFFIXES)


def refusal(
    headers: Mapping[str, Iterable[str]],
    *,
    return_path: str | None,
    own_addresses: Iterable[str],
    spam: bool,
    virus: bool,
) -> str | None:
    """Why this message gets no auto-reply (a reason for the processing log), or None when it may.

    ``headers`` are keyed by lower-case name; ``return_path`` is the envelope sender."""
    if spam or virus:
        return "spam" if spam else "virus"
    for value in headers.get("auto-submitted", ()):
        if value.strip().split(";")[0].strip().lower() != "no":
            return "auto_submitted"
    for value in headers.get("precedence", ()):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return "precedence"
    if any(name.startswith("list-") for name in headers):
        return "list"
    sender = (return_path or "").strip().strip("<>").strip().lower()
    if not sender or "@" not in sender:
        return "no_return_path"
    if is_system_sender(sender):
        return "system_sender"
    if sender in {a.lower() for a in own_addresses}:
        return "own_address"
    return None

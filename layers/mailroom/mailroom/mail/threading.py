"""Which thread a message belongs to.

1. Its parent, found through In-Reply-To, then References from the newest to the oldest (each id
   is looked up through an index of the Message-IDs this mailbox has stored).
2. Fallback, when no referenced message is known (e.g. the first message we stored of a thread
   started elsewhere, or a client that drops the headers): a message whose subject carries a reply
   or forward prefix joins the most recent thread in the mailbox with the same normalized subject,
   if that thread was active in the last ``SUBJECT_FALLBACK_DAYS`` days.
3. Otherwise a new thread.
"""

from __future__ import annotations

import hashlib
import re

SUBJECT_FALLBACK_DAYS = 30
MAX_REFERENCE_LOOKUPS = 10
_PREFIX_RE = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|tr|rif|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def normalize_subject(subject: str) -> str:
    """Subject without reply/forward prefixes (any number, several languages), case and spacing folded."""
    return " ".join(_PREFIX_RE.sub("", subject or "").split()).casefold()


def is_reply_subject(subject: str) -> bool:
    return bool(_PREFIX_RE.match(subject or ""))


def subject_key(subject: str) -> str:
    return hashlib.sha256(normalize_subject(subject).encode()).hexdigest()[:32]


def message_id_key(message_id: str) -> str:
    """Index key of an RFC Message-ID (case-sensitive local part, so hashed as is)."""
    return hashlib.sha256(message_id.strip().encode()).hexdigest()[:40]


def parent_candidates(in_reply_to: str | None, references: list[str]) -> list[str]:
    """Message-IDs to look up for the parent, most likely first, without repeats, bounded."""
    ordered = ([in_reply_to] if in_reply_to else []) + list(reversed(references))
    return list(dict.fromkeys(ordered))[:MAX_REFERENCE_LOOKUPS]

"""When an imported message is one the mailbox already has (a migration's ``skip_duplicates``).

A Message-ID alone does not say so: mailers reuse one for distinct messages (a notification
system, a broken client), and a migration must never drop distinct mail. As imapsync identifies
messages by more than their Message-ID, a duplicate here is the *same message*:

* with a Message-ID: the same Message-ID and the same ``fingerprint``, a hash of the Message-ID,
  Date, From and Subject headers as written and of the body's bytes (the copy another server kept
  is found too: the headers a server adds on delivery, ``Received`` and the like, are not in it,
  and line endings do not count);
* without one: the same bytes (``digest``).

Two copies that differ in any of these are distinct and both imported; the worst a wrong answer
can do is import a copy twice, never skip a message.
"""

from __future__ import annotations

import hashlib
import json
import re
from email.parser import BytesHeaderParser
from email.policy import compat32

IDENTITY_HEADERS = ("Message-ID", "Date", "From", "Subject")

_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_LINE_END_RE = re.compile(rb"\r\n|\r")
_FOLD_RE = re.compile(r"\s+")


def digest(raw: bytes) -> str:
    """What identifies a message without a Message-ID: its exact bytes."""
    return hashlib.sha256(raw).hexdigest()


def split(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body): the body starts after the first empty line (none: no body)."""
    found = _HEADER_END_RE.search(raw)
    if found is None:
        return raw, b""
    return raw[: found.start()], raw[found.end() :]


def body_digest(body: bytes) -> str:
    """SHA-256 of a body with its line endings as LF and its trailing line ends dropped: a server
    that stored it with other line endings, or without the final one, kept the same body."""
    return hashlib.sha256(_LINE_END_RE.sub(b"\n", body).rstrip(b"\n")).hexdigest()


def identity_headers(header_block: bytes) -> tuple[str, ...]:
    """The identity headers' values as written (unfolded, whitespace runs as one space; encoded
    words left encoded; 8-bit bytes kept as surrogate escapes, never replaced, so two values that
    differ in them stay different), empty for a missing one; the first occurrence counts."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block + b"\r\n\r\n")
    first: dict[str, str] = {}
    for name, value in headers.raw_items():
        first.setdefault(name.lower(), str(value))
    return tuple(_FOLD_RE.sub(" ", first.get(name.lower(), "")).strip() for name in IDENTITY_HEADERS)


def fingerprint(raw: bytes) -> str:
    """The content fingerprint of a message (see the module docstring)."""
    header_block, body = split(raw)
    parts = [*identity_headers(header_block), body_digest(body)]
    # Escaped JSON: a value with a separator in it cannot make two lists hash alike.
    canonical = json.dumps(parts, ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()

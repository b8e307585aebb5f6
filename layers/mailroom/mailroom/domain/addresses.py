"""Email addresses as Mailroom stores them.

Hosted addresses (mailboxes, aliases, invites) follow agentmail-v0-api.txt: the local part is
``a-zA-Z0-9._%+-``, 1 to 64 characters; Mailroom adds RFC 5321's dot-atom rule (no leading,
trailing or doubled dot), since such an address cannot receive mail anywhere. Addresses are stored
lower case: mail systems treat local parts case-insensitively in practice, and uniqueness must too.

External addresses (forwarding and alias targets outside the organization) accept any RFC 5322
dot-atom local part, since they are someone else's addresses.

Display names (a mailbox's ``name``, an invite's, a v0 inbox's ``display_name``) become the ``From``
name of everything the mailbox sends. Refused: what no header can carry (control characters, the
line and paragraph separators U+2028 and U+2029, unpaired surrogates), the bidirectional embedding,
override and isolate controls (U+202A-U+202E, U+2066-U+2069: they make a name read in another
order than it is written), and ``<``, ``>`` and ``@``: a name that looks like an address is how a
reader is shown a sender it is not. Everything else is a name (commas, quotes, semicolons,
backslashes, any script), and the composer encodes it so it stays one (``mail.addresses``).
"""

from __future__ import annotations

import re
import unicodedata

from mailroom.domain.domain_names import InvalidDomainName, normalize_domain

MAX_LOCAL_PART = 64
_HOSTED_LOCAL_RE = re.compile(r"^[a-zA-Z0-9._%+-]{1,64}$")
_EXTERNAL_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


_REFUSED_IN_NAME_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\u202a-\u202e\u2066-\u2069<>@]")


class InvalidAddress(ValueError):
    """Not an address Mailroom accepts here; the message says why."""


class InvalidDisplayName(ValueError):
    """Not a display name Mailroom stores; the message names the character."""


def check_display_name(name: str | None) -> str | None:
    """``name`` when Mailroom may store it as a display name (see the module docstring)."""
    found = _REFUSED_IN_NAME_RE.search(name or "")
    if found is None:
        return name
    char = found.group()
    code = ord(char)
    label = (
        "an unpaired surrogate" if 0xD800 <= code <= 0xDFFF else unicodedata.name(char, "a control character")
    )
    raise InvalidDisplayName(
        f"a display name cannot contain U+{code:04X} ({label}): no control characters, line breaks, "
        "bidirectional overrides, or < > @ (a name must not look like an address)"
    )


def _check_dots(local: str) -> None:
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidAddress("the local part cannot start or end with a dot or contain two dots in a row")


def normalize_local_part(raw: str) -> str:
    local = raw.strip()
    if not _HOSTED_LOCAL_RE.match(local):
        raise InvalidAddress("the local part must be 1 to 64 characters of a-z A-Z 0-9 . _ % + -")
    _check_dots(local)
    return local.lower()


def split_address(raw: str) -> tuple[str, str]:
    local, at, host = raw.strip().rpartition("@")
    if not at or not local or not host:
        raise InvalidAddress("an address looks like local-part@domain")
    return local, host


def normalize_hosted(raw: str) -> str:
    """A hosted address (``Local@Example.COM`` → ``local@example.com``), or InvalidAddress."""
    local, host = split_address(raw)
    try:
        domain = normalize_domain(host)
    except InvalidDomainName as exc:
        raise InvalidAddress(f"domain: {exc}") from exc
    return f"{normalize_local_part(local)}@{domain}"


def normalize_any(raw: str) -> str:
    """Any deliverable address (an external forwarding target, say), lower-cased domain."""
    local, host = split_address(raw)
    if not _EXTERNAL_LOCAL_RE.match(local):
        raise InvalidAddress(f"'{local[:64]}' is not a valid local part")
    _check_dots(local)
    try:
        domain = normalize_domain(host)
    except InvalidDomainName as exc:
        raise InvalidAddress(f"domain: {exc}") from exc
    return f"{local.lower()}@{domain}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def local_part_of(address: str) -> str:
    return address.rpartition("@")[0]

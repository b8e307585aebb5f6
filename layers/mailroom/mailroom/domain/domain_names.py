"""Domain names as Mailroom stores them: IDNA (punycode), lower case, no trailing dot."""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_RESERVED = frozenset({"localhost", "localdomain", "invalid", "test", "example", "local", "internal"})


class InvalidDomainName(ValueError):
    """A name Mailroom cannot host mail for; the message says why."""


def normalize_domain(raw: str) -> str:
    """The stored form of a user-supplied domain name, or InvalidDomainName."""
    name = raw.strip().rstrip(".").lower()
    if not name:
        raise InvalidDomainName("domain name is empty")
    if any(c.isspace() for c in name):
        raise InvalidDomainName("domain name must not contain spaces")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidDomainName("an IP address is not a domain name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidDomainName(f"domain name is longer than {MAX_NAME_LENGTH} characters")
    labels = name.split(".")
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidDomainName(f"label '{label[:20]}…' is longer than {MAX_LABEL_LENGTH} characters")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidDomainName(f"not a valid (internationalized) domain name: {exc}") from exc
    if len(ascii_name) > MAX_NAME_LENGTH:
        raise InvalidDomainName(f"domain name is longer than {MAX_NAME_LENGTH} characters once encoded")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidDomainName("a domain name needs at least two labels (e.g. example.com)")
    for label in labels:
        if not _LABEL_RE.match(label):
            raise InvalidDomainName(f"label '{label}' is not a valid DNS label")
    if labels[-1].isdigit():
        raise InvalidDomainName("the top-level label cannot be numeric")
    if labels[-1] in _RESERVED or ascii_name in _RESERVED:
        raise InvalidDomainName(f"'{labels[-1]}' is a reserved name that cannot receive mail")
    return ascii_name


def unicode_form(ascii_name: str) -> str:
    """The human form of a stored name (``xn--bcher-kva.example`` → ``bücher.example``)."""
    try:
        return idna.decode(ascii_name)
    except idna.IDNAError:
        return ascii_name

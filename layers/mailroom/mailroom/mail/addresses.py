"""Addresses in headers: the structured value, its strict reading, its display form and its wire form.

An ``Address`` is a display name and an addr-spec, kept apart from the moment an API string is
read until the header is written, so no name can ever become address syntax: a name is any text
(``Smith, John``, ``Bób <ceo@bank.example>``), and on the wire it is a quoted-string or RFC 2047
encoded words, never bare specials (see ``header_text``).

Reading (``parse_mailbox``) is strict: the value must be exactly one mailbox to both of the standard
library's address parsers (the header registry's and ``getaddresses``), and both must find the same
addr-spec: a string the two read differently is ambiguous, and refused rather than guessed at. The
display name is the registry's reading, so an RFC 2047 encoded name (how older Mailroom views and
other systems write non-ASCII names) is decoded, then encoded afresh when written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.headerregistry import AddressHeader, HeaderRegistry
from email.utils import getaddresses

from mailroom.mail.header_text import (
    REFUSED_RE,
    ComposeError,
    check_header_text,
    describe,
    encoded_words,
    fold,
    join_encoded_words,
    refused_in_header,
    shown,
)

_LOCAL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
# A phrase of RFC 5322 atoms, one space apart: written as it is (``Alice Example``).
_ATOM_PHRASE_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# The display form may keep non-ASCII text unquoted too (RFC 6532: UTF-8 is atext there).
_DISPLAY_ATOM = r"[^\x00-\x20\x7f-\x9f\"(),.:;<>@\[\\\]]+"
_DISPLAY_PHRASE_RE = re.compile(rf"^{_DISPLAY_ATOM}(?: {_DISPLAY_ATOM})*$")
_PRINTABLE_ASCII_RE = re.compile(r"^[\x20-\x7e]*$")
MAX_QUOTED_CHARS = 60  # longer ASCII names are written as encoded words, which fold
_REGISTRY = HeaderRegistry()


def clean_name(name: str) -> str:
    """A display name as Mailroom keeps it: each run of whitespace (tabs, no-break spaces...) one
    space, none leading or trailing, as address parsers and stored mail show names anyway."""
    return " ".join(name.split())


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox of an address header. ``address`` is an addr-spec; ``name`` is only text."""

    name: str
    address: str

    def __str__(self) -> str:
        """The display form (API views, prefills): ``Name <addr>``, the name quoted when it holds
        anything but atoms (Unicode kept), or encoded when it holds ``=?``. ``parse_mailbox``
        reads it back to this very address."""
        if not self.name:
            return self.address
        if "=?" in self.name:
            phrase = " ".join(encoded_words(self.name))
        elif _DISPLAY_PHRASE_RE.match(self.name):
            phrase = self.name
        else:
            phrase = _quoted(self.name)
        return f"{phrase} <{self.address}>"

    def tokens(self) -> list[str]:
        """The wire form, as tokens ``header_text.fold`` joins: ASCII only."""
        if not self.name:
            return [self.address]
        return [*name_tokens(self.name), f"<{self.address}>"]


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def name_tokens(name: str) -> list[str]:
    """A display name as header tokens: atoms as they are, other short printable ASCII as one
    quoted-string, anything else (non-ASCII, ``=?``, long) as encoded words."""
    if "=?" not in name and _ATOM_PHRASE_RE.match(name):
        return name.split(" ")
    if "=?" not in name and len(name) <= MAX_QUOTED_CHARS and _PRINTABLE_ASCII_RE.match(name):
        return [_quoted(name)]
    return encoded_words(name)


def address_header(header_name: str, addresses: Iterable[Address]) -> str:
    """The folded value of an address header (``From``, ``To``, ``Cc``, ``Reply-To``)."""
    tokens: list[str] = []
    for address in addresses:
        if tokens:
            tokens[-1] += ","
        tokens += address.tokens()
    return fold(header_name, tokens)


def valid_addr_spec(address: str) -> str | None:
    """``local@domain`` with a dot-atom local part and a DNS domain (lower-cased), or None. A local
    part holding ``=?`` is refused too: RFC 5322 allows it, but readers (Python's among them)
    decode an encoded word there, and ``=?utf-8?q?ceo=40bank.example?=@x.org`` reads as another
    address."""
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_RE.match(local) or ".." in local or local[0] == "." or local[-1] == ".":
        return None
    if "=?" in local:
        return None
    if not _DOMAIN_RE.match(domain):
        return None
    return f"{local}@{domain.lower()}"


def parse_mailbox(field_name: str, value: str | Address) -> Address:
    """Exactly one mailbox (``addr``, ``Name <addr>``, ``"Name, with specials" <addr>``), strictly
    read (see the module docstring), or ``ComposeError`` naming ``field_name``."""
    if isinstance(value, Address):
        return _checked(field_name, value.name, value.address, value.address)
    check_header_text(field_name, value)
    refused = ComposeError(field_name, f"{field_name}: '{shown(value)}' is not one email address")
    legacy = getaddresses([value])
    try:
        header = _REGISTRY("To", join_encoded_words(value))
        found = header.addresses if isinstance(header, AddressHeader) else ()
    except Exception as exc:  # a corner of the registry's parser: not an address we can vouch for
        raise refused from exc
    if len(legacy) != 1 or len(found) != 1 or not legacy[0][1]:
        raise refused
    return _checked(field_name, found[0].display_name, found[0].addr_spec, legacy[0][1])


def _checked(field_name: str, name: str, address: str, legacy_address: str) -> Address:
    spec = valid_addr_spec(address)
    if spec is None or address != legacy_address:
        raise ComposeError(field_name, f"{field_name}: '{shown(address)}' is not a valid email address")
    char = refused_in_header(name)
    if char is not None:
        raise ComposeError(
            field_name,
            f"{field_name}: the display name contains {describe(char)}, which a header cannot carry",
        )
    return Address(clean_name(name), spec)


def stored_name(name: str) -> str:
    """A display name kept before names were checked, made one a header can carry: whatever it may
    not hold becomes a space. (Its specials need nothing: ``Address`` encodes them.)"""
    return clean_name(REFUSED_RE.sub(" ", name))


def display(name: str, address: str) -> str:
    """``str(Address(name, address))`` for any pair read from received mail (no checks: the
    address may be one Mailroom would not send to)."""
    return str(Address(clean_name(name), address))


def address_only(value: str) -> str:
    """The bare, lower-cased address of ``"Name <addr>"``: Mailroom addresses are case-insensitive."""
    name_addr = getaddresses([value])
    return (name_addr[0][1] if name_addr and name_addr[0][1] else value).strip().lower()

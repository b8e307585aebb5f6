"""A contact as Mailroom keeps it, independent of the format it came in (vCard, CSV, JSON).

Pure: normalizing and checking a contact's fields, merging two records of one person, and the
search terms a contact is found by (``store.contacts`` writes one sort key per term, so a prefix
search is a ``begins_with`` Query of the mailbox partition, never a Scan).

Addresses are the identity of a contact within a mailbox: stored lower case (an IDN domain as
punycode), each owned by at most one contact; a second record naming one of them is a *merge*.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from mailroom.domain import addresses

MAX_EMAILS = 20
MAX_PHONES = 20
MAX_POSTAL = 10
MAX_TEXT = 200  # names, organization, title, a label, an address line
MAX_NOTES = 5000
MAX_URL = 2000
MAX_TERM = 120  # a search term's characters (a sort key holds at most 1024 bytes)
_BIRTHDAY_RE = re.compile(r"^(?:(\d{4})|--)-?(\d{2})-?(\d{2})$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\ud800-\udfff]")
_LINE_RE = re.compile(r"[\r\n\t]+")
_WORD_RE = re.compile(r"[^\w@.+-]+")


class InvalidContact(ValueError):
    """A field that cannot be stored; ``field`` names it (``emails.1.address``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class Email:
    address: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Phone:
    number: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class PostalAddress:
    label: str | None = None
    street: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None

    def is_empty(self) -> bool:
        return not any((self.street, self.city, self.region, self.postal_code, self.country))


@dataclass(frozen=True, slots=True)
class Contact:
    name: str | None = None  # the formatted name (vCard FN)
    given_name: str | None = None
    family_name: str | None = None
    nickname: str | None = None
    emails: tuple[Email, ...] = ()
    phones: tuple[Phone, ...] = ()
    organization: str | None = None
    title: str | None = None
    notes: str | None = None
    birthday: str | None = None  # YYYY-MM-DD, or --MM-DD when the year is unknown
    addresses: tuple[PostalAddress, ...] = ()
    photo_url: str | None = None

    @property
    def display_name(self) -> str | None:
        if self.name:
            return self.name
        joined = " ".join(p for p in (self.given_name, self.family_name) if p)
        return joined or self.organization or None

    @property
    def email_addresses(self) -> list[str]:
        return [e.address for e in self.emails]

    def is_empty(self) -> bool:
        return not (self.display_name or self.emails or self.phones)


# ----------------------------------------------------------------------------- normalizing


def _text(field_name: str, value: str | None, limit: int = MAX_TEXT, *, lines: bool = False) -> str | None:
    if value is None:
        return None
    cleaned = value.replace("\r\n", "\n")
    found = _CONTROL_RE.search(cleaned if lines else _LINE_RE.sub(" ", cleaned))
    if found is not None:
        raise InvalidContact(field_name, f"contains the control character U+{ord(found.group()):04X}")
    cleaned = cleaned.strip() if lines else " ".join(cleaned.split())
    if len(cleaned) > limit:
        raise InvalidContact(field_name, f"at most {limit} characters")
    return cleaned or None


def normalize_address(field_name: str, raw: str) -> str:
    try:
        return addresses.normalize_any(raw.strip()).lower()
    except addresses.InvalidAddress as exc:
        raise InvalidContact(field_name, f"'{raw[:80]}' is not an email address: {exc}") from exc


def normalize_birthday(field_name: str, raw: str | None) -> str | None:
    """``YYYY-MM-DD`` or ``--MM-DD`` (vCard's form for a birthday without its year)."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if "T" in value:  # vCard allows a date-time; the day is what a birthday is
        value = value.split("T", 1)[0]
    match = _BIRTHDAY_RE.match(value)
    if match is None:
        raise InvalidContact(field_name, f"'{value[:40]}' is not a date (YYYY-MM-DD or --MM-DD)")
    year, month, day = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        raise InvalidContact(field_name, f"'{value[:40]}' is not a date")
    if year is not None and year != "1604":  # 1604: Apple's placeholder for "no year"
        from datetime import date

        try:
            date(int(year), int(month), int(day))
        except ValueError as exc:
            raise InvalidContact(field_name, f"'{value[:40]}' is not a date") from exc
        return f"{year}-{month}-{day}"
    return f"--{month}-{day}"


def normalize_url(field_name: str, raw: str | None) -> str | None:
    value = (raw or "").strip()
    if not value:
        return None
    if len(value) > MAX_URL or not re.match(r"^https?://[^\s]+$", value, re.IGNORECASE):
        raise InvalidContact(field_name, "an http(s) URL of at most 2000 characters")
    return value


def normalize(contact: Contact) -> Contact:
    """The contact with every field cleaned and checked (InvalidContact names the first bad one).

    Addresses repeated within the contact are kept once; empty entries are dropped.
    """
    emails: dict[str, Email] = {}
    for position, email in enumerate(contact.emails):
        address = normalize_address(f"emails.{position}.address", email.address)
        emails.setdefault(address, Email(address, _text(f"emails.{position}.label", email.label)))
    if len(emails) > MAX_EMAILS:
        raise InvalidContact("emails", f"at most {MAX_EMAILS} addresses")
    phones = []
    for position, phone in enumerate(contact.phones):
        number = _text(f"phones.{position}.number", phone.number, 64)
        if number:
            phones.append(Phone(number, _text(f"phones.{position}.label", phone.label)))
    if len(phones) > MAX_PHONES:
        raise InvalidContact("phones", f"at most {MAX_PHONES} numbers")
    postal = []
    for position, where in enumerate(contact.addresses):
        cleaned = PostalAddress(
            **{
                name: _text(f"addresses.{position}.{name}", getattr(where, name))
                for name in ("label", "street", "city", "region", "postal_code", "country")
            }
        )
        if not cleaned.is_empty():
            postal.append(cleaned)
    if len(postal) > MAX_POSTAL:
        raise InvalidContact("addresses", f"at most {MAX_POSTAL} postal addresses")
    return Contact(
        name=_text("name", contact.name),
        given_name=_text("given_name", contact.given_name),
        family_name=_text("family_name", contact.family_name),
        nickname=_text("nickname", contact.nickname),
        emails=tuple(emails.values()),
        phones=tuple(phones),
        organization=_text("organization", contact.organization),
        title=_text("title", contact.title),
        notes=_text("notes", contact.notes, MAX_NOTES, lines=True),
        birthday=normalize_birthday("birthday", contact.birthday),
        addresses=tuple(postal),
        photo_url=normalize_url("photo_url", contact.photo_url),
    )


# ----------------------------------------------------------------------------- merging


def merge(existing: Contact, incoming: Contact) -> Contact:
    """One record of a person from two: what ``existing`` says wins, ``incoming`` fills its gaps
    and adds the addresses, numbers and postal addresses it does not have yet."""
    emails = {e.address: e for e in existing.emails}
    for email in incoming.emails:
        emails.setdefault(email.address, email)
    phones = list(existing.phones)
    known_numbers = {_digits(p.number) for p in phones}
    for phone in incoming.phones:
        if _digits(phone.number) not in known_numbers:
            phones.append(phone)
            known_numbers.add(_digits(phone.number))
    postal = list(existing.addresses)
    postal += [a for a in incoming.addresses if a not in postal]
    filled: dict[str, Any] = {}
    for name in (
        "name",
        "given_name",
        "family_name",
        "nickname",
        "organization",
        "title",
        "notes",
        "birthday",
        "photo_url",
    ):
        filled[name] = getattr(existing, name) or getattr(incoming, name)
    return replace(
        existing,
        emails=tuple(emails.values())[:MAX_EMAILS],
        phones=tuple(phones)[:MAX_PHONES],
        addresses=tuple(postal)[:MAX_POSTAL],
        **filled,
    )


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit() or ch == "+")


# ----------------------------------------------------------------------------- search


def fold(text: str) -> str:
    """Lower case without accents (``Zoë`` → ``zoe``), so a search need not type them."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_prefix(query: str) -> str:
    """A search query as the terms are written (folded, single spaces)."""
    return " ".join(fold(query).split())[:MAX_TERM]


def search_terms(contact: Contact) -> list[str]:
    """What a contact is found by, each a sort-key suffix: every address, the whole name and each
    word of it, the organization. A prefix of any of them finds the contact."""
    terms: dict[str, None] = {}
    for email in contact.emails:
        terms[email.address[:MAX_TERM]] = None
    for value in (contact.display_name, contact.given_name, contact.family_name, contact.nickname):
        if not value:
            continue
        whole = search_prefix(value)
        if whole:
            terms[whole] = None
        for word in _WORD_RE.split(whole):
            # A hyphenated name is found by each of its parts too (Saldaña-Núñez by "nunez").
            for part in (word, *word.split("-")) if "-" in word else (word,):
                if len(part) > 1:
                    terms[part[:MAX_TERM]] = None
    if contact.organization:
        terms[search_prefix(contact.organization)] = None
    terms.pop("", None)
    return list(terms)[:40]


def first_match(terms: list[str], prefix: str) -> str | None:
    """The smallest of ``terms`` starting with ``prefix``: a search lists a contact once, at it."""
    matching = [t for t in terms if t.startswith(prefix)]
    return min(matching) if matching else None


# ----------------------------------------------------------------------------- JSON shape


def to_values(contact: Contact) -> dict[str, Any]:
    return {
        "name": contact.name,
        "given_name": contact.given_name,
        "family_name": contact.family_name,
        "nickname": contact.nickname,
        "emails": [{"address": e.address, "label": e.label} for e in contact.emails],
        "phones": [{"number": p.number, "label": p.label} for p in contact.phones],
        "organization": contact.organization,
        "title": contact.title,
        "notes": contact.notes,
        "birthday": contact.birthday,
        "addresses": [
            {
                "label": a.label,
                "street": a.street,
                "city": a.city,
                "region": a.region,
                "postal_code": a.postal_code,
                "country": a.country,
            }
            for a in contact.addresses
        ],
        "photo_url": contact.photo_url,
    }


def from_values(values: dict[str, Any]) -> Contact:
    return Contact(
        name=values.get("name"),
        given_name=values.get("given_name"),
        family_name=values.get("family_name"),
        nickname=values.get("nickname"),
        emails=tuple(Email(e["address"], e.get("label")) for e in values.get("emails") or []),
        phones=tuple(Phone(p["number"], p.get("label")) for p in values.get("phones") or []),
        organization=values.get("organization"),
        title=values.get("title"),
        notes=values.get("notes"),
        birthday=values.get("birthday"),
        addresses=tuple(
            PostalAddress(
                label=a.get("label"),
                street=a.get("street"),
                city=a.get("city"),
                region=a.get("region"),
                postal_code=a.get("postal_code"),
                country=a.get("country"),
            )
            for a in values.get("addresses") or []
        ),
        photo_url=values.get("photo_url"),
    )

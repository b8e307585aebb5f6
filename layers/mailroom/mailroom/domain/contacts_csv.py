"""Contacts as CSV: the layouts Google Contacts and Outlook export, and a plain one.

The layout is recognized from the header row:

- **Google** (contacts.google.com → Export → Google CSV): ``First Name``, ``Last Name``,
  ``Organization Name``, ``E-mail 1 - Label`` / ``E-mail 1 - Value`` (also the older ``Given Name``
  / ``Family Name`` / ``E-mail 1 - Type``); several values in one cell are joined by ``" ::: "``,
  the primary entry's label starts with ``* ``.
- **Outlook** (Outlook → Export → Comma Separated Values): ``First Name``, ``Last Name``,
  ``E-mail Address``, ``E-mail 2 Address``, ``Mobile Phone``, ``Company``, ``Job Title``,
  ``Business Street`` …; its ``Title`` is the name prefix (Mr., Dr.), its empty birthday ``0/0/00``.
- **Plain**: any of ``name``, ``email`` (or ``emails``, ``;``-separated), ``phone``,
  ``organization``, ``title``, ``notes``, ``birthday``, in any case.

Writing uses the Google layout (it is what most tools read back), cells that a spreadsheet would run
as a formula (starting with ``= + - @``) prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mailroom.domain.contacts import Contact, Email, Phone, PostalAddress

MAX_ROW_CHARS = 64 * 1024
_MULTI = " ::: "
_US_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2,4})$")


@dataclass(frozen=True, slots=True)
class Row:
    position: int  # the data row's number, the header being row 0
    contact: Contact | None
    error: str | None = None


class UnknownLayout(ValueError):
    """The header names none of the columns of a known layout."""


def layout_of(header: list[str]) -> str:
    names = {h.strip().lower() for h in header}
    if any(re.fullmatch(r"e-mail \d+ - value", n) for n in names) or "organization name" in names:
        return "google"
    if "e-mail address" in names or "business street" in names or "job title" in names:
        return "outlook"
    if names & {"email", "emails", "e-mail", "email address", "name", "full name", "display name"}:
        return "plain"
    raise UnknownLayout(
        "the header row is not a Google Contacts or Outlook export, nor a plain layout "
        "(name, email, phone, organization, title, notes, birthday)"
    )


def read_rows(text: str) -> Iterator[Row]:
    """Each data row as a contact, or why it could not be read; raises UnknownLayout for the file."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=False)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UnknownLayout(f"the header row is not CSV: {exc}") from exc
    layout = layout_of(header)
    columns = [h.strip().lower() for h in header]
    read = {"google": _google, "outlook": _outlook, "plain": _plain}[layout]
    position = 0
    while True:
        position += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(position, None, f"not a CSV row: {exc}")
            continue
        if not any(c.strip() for c in cells):
            position -= 1  # blank lines are not rows
            continue
        if sum(len(c) for c in cells) > MAX_ROW_CHARS:
            yield Row(position, None, f"the row is longer than {MAX_ROW_CHARS // 1024} KiB")
            continue
        values = {
            name: _unescaped(cell.strip()) for name, cell in zip(columns, cells, strict=False) if cell.strip()
        }
        yield Row(position, read(values))


def _unescaped(cell: str) -> str:
    """A cell as written before ``_cell`` protected it from spreadsheets (``'=x`` → ``=x``)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in ("=", "+", "-", "@") else cell


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split(":::") if part.strip()]


def _numbered(values: dict[str, str], kind: str) -> list[tuple[str | None, str]]:
    """Google's ``<Kind> N - Label|Type`` / ``<Kind> N - Value`` pairs, several values per cell."""
    found: list[tuple[str | None, str]] = []
    for n in range(1, 50):
        value = values.get(f"{kind} {n} - value")
        if value is None and f"{kind} {n} - label" not in values and f"{kind} {n} - type" not in values:
            if n > 10:
                break
            continue
        labels = [
            lbl.lstrip("* ").strip().lower() or None
            for lbl in _split_all(values.get(f"{kind} {n} - label") or values.get(f"{kind} {n} - type"))
        ]
        parts = _split(value)
        # Google gives the values of one cell one label; this module's export writes a label per
        # value (as many as values, in order), which is read back pairwise.
        paired = len(labels) == len(parts) and len(parts) > 1
        shared = next((lbl for lbl in labels if lbl), None)
        for index, part in enumerate(parts):
            found.append((labels[index] if paired else shared, part))
    return found


def _split_all(cell: str | None) -> list[str]:
    """Like ``_split``, keeping empty entries (a value with no label keeps its place)."""
    return [part.strip() for part in cell.split(":::")] if cell and cell.strip() else []


def _google(values: dict[str, str]) -> Contact:
    given = values.get("first name") or values.get("given name")
    family = values.get("last name") or values.get("family name")
    name = values.get("name") or " ".join(
        p for p in (values.get("name prefix"), given, values.get("middle name"), family) if p
    )
    postal = []
    for n in range(1, 10):
        prefix = f"address {n} - "
        if not any(k.startswith(prefix) for k in values):
            continue
        street = values.get(prefix + "street") or values.get(prefix + "formatted")
        postal.append(
            PostalAddress(
                label=(values.get(prefix + "label") or values.get(prefix + "type") or "").lstrip("* ").lower()
                or None,
                street=street,
                city=values.get(prefix + "city"),
                region=values.get(prefix + "region"),
                postal_code=values.get(prefix + "postal code"),
                country=values.get(prefix + "country"),
            )
        )
    photo = values.get("photo")
    return Contact(
        name=name or None,
        given_name=given,
        family_name=family,
        nickname=values.get("nickname"),
        emails=tuple(Email(address, label) for label, address in _numbered(values, "e-mail")),
        phones=tuple(Phone(number, label) for label, number in _numbered(values, "phone")),
        organization=values.get("organization name") or values.get("organization 1 - name"),
        title=values.get("organization title") or values.get("organization 1 - title"),
        notes=values.get("notes"),
        birthday=values.get("birthday"),
        addresses=tuple(postal),
        photo_url=photo if photo and photo.lower().startswith(("http://", "https://")) else None,
    )


_OUTLOOK_PHONES = (
    ("mobile phone", "mobile"),
    ("business phone", "work"),
    ("business phone 2", "work"),
    ("home phone", "home"),
    ("home phone 2", "home"),
    ("primary phone", "main"),
    ("other phone", "other"),
    ("business fax", "work fax"),
    ("home fax", "home fax"),
    ("pager", "pager"),
)


def _outlook_date(value: str | None) -> str | None:
    """Outlook writes ``M/D/YYYY`` (``0/0/00`` when there is none)."""
    if not value:
        return None
    match = _US_DATE_RE.match(value)
    if match is None:
        return value
    month, day, year = (int(g) for g in match.groups())
    if month == 0 or day == 0:
        return None
    if year < 100:
        year += 1900 if year > 30 else 2000
    return f"{year:04d}-{month:02d}-{day:02d}"


def _outlook(values: dict[str, str]) -> Contact:
    given, family = values.get("first name"), values.get("last name")
    name = " ".join(
        p for p in (values.get("title"), given, values.get("middle name"), family, values.get("suffix")) if p
    )
    emails = [
        Email(values[column])
        for column in ("e-mail address", "e-mail 2 address", "e-mail 3 address")
        if values.get(column)
    ]
    phones = [Phone(values[column], label) for column, label in _OUTLOOK_PHONES if values.get(column)]
    postal = [
        PostalAddress(
            label=kind,
            street=values.get(f"{kind} street"),
            city=values.get(f"{kind} city"),
            region=values.get(f"{kind} state"),
            postal_code=values.get(f"{kind} postal code"),
            country=values.get(f"{kind} country/region") or values.get(f"{kind} country"),
        )
        for kind in ("business", "home", "other")
    ]
    return Contact(
        name=name or None,
        given_name=given,
        family_name=family,
        nickname=values.get("nickname"),
        emails=tuple(emails),
        phones=tuple(phones),
        organization=values.get("company"),
        title=values.get("job title"),
        notes=values.get("notes"),
        birthday=_outlook_date(values.get("birthday")),
        addresses=tuple(a for a in postal if not a.is_empty()),
    )


def _plain(values: dict[str, str]) -> Contact:
    def first(*names: str) -> str | None:
        return next((values[n] for n in names if values.get(n)), None)

    raw_emails = first("email", "emails", "e-mail", "email address") or ""
    phones = first("phone", "phones", "telephone", "mobile") or ""
    return Contact(
        name=first("name", "full name", "display name"),
        given_name=first("first name", "given name"),
        family_name=first("last name", "family name"),
        emails=tuple(Email(a.strip()) for a in re.split(r"[;,]", raw_emails) if a.strip()),
        phones=tuple(Phone(p.strip()) for p in phones.split(";") if p.strip()),
        organization=first("organization", "company", "org"),
        title=first("title", "job title"),
        notes=first("notes", "note"),
        birthday=first("birthday", "bday"),
    )


# ----------------------------------------------------------------------------- writing

GOOGLE_HEADER = [
    "Name",
    "First Name",
    "Last Name",
    "Nickname",
    "Organization Name",
    "Organization Title",
    "Birthday",
    "Notes",
    "Photo",
    "E-mail 1 - Label",
    "E-mail 1 - Value",
    "Phone 1 - Label",
    "Phone 1 - Value",
    "Address 1 - Label",
    "Address 1 - Street",
    "Address 1 - City",
    "Address 1 - Region",
    "Address 1 - Postal Code",
    "Address 1 - Country",
]


_PHONE_RE = re.compile(r"^\+[\d\s().\/-]+$")


def _cell(value: str | None) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ gets a leading ``'`` (read back
    without it), except phone numbers in international form, which are data."""
    text = value or ""
    if text[:1] in ("=", "+", "-", "@") and not _PHONE_RE.match(text):
        return "'" + text
    return text


def _labelled(labels: Iterable[str | None]) -> str:
    listed = [label or "other" for label in labels]
    if listed:
        listed[0] = "* " + listed[0]
    return _MULTI.join(listed)


def write_csv(contacts: Iterable[Contact]) -> Iterator[str]:
    """The Google Contacts layout, a row per contact; several emails or phones in one cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GOOGLE_HEADER)
    yield out.getvalue()
    for contact in contacts:
        out.seek(0)
        out.truncate()
        first_address = contact.addresses[0] if contact.addresses else PostalAddress()
        writer.writerow(
            [
                _cell(contact.name),
                _cell(contact.given_name),
                _cell(contact.family_name),
                _cell(contact.nickname),
                _cell(contact.organization),
                _cell(contact.title),
                contact.birthday or "",
                _cell(contact.notes),
                contact.photo_url or "",
                _labelled(e.label for e in contact.emails) if contact.emails else "",
                _MULTI.join(e.address for e in contact.emails),
                _labelled(p.label for p in contact.phones) if contact.phones else "",
                _MULTI.join(_cell(p.number) for p in contact.phones),
                first_address.label or "",
                _cell(first_address.street),
                _cell(first_address.city),
                _cell(first_address.region),
                _cell(first_address.postal_code),
                _cell(first_address.country),
            ]
        )
        yield out.getvalue()

"""vCard 3.0 and 4.0 (RFC 2426, RFC 6350) in and out, through ``vobject``.

Reading: a file is cut into its cards first (``BEGIN:VCARD`` … ``END:VCARD`` after unfolding) and
each card is parsed on its own, so a malformed card (a broken base64 PHOTO, a bad line) is reported
at its position and never stops the cards after it; ``vobject.readComponents`` would raise out of
the whole file. What Apple Contacts, Google Contacts and Outlook write is read: grouped properties
(``item1.EMAIL``), ``TYPE`` parameters as lists or ``pref``, ``--MMDD`` birthdays, embedded photos
(dropped: only a photo URL is kept).

Writing: vCard 4.0, one card per contact, with a ``UID`` of the contact's id so a re-import of an
export merges instead of duplicating (addresses are the merge key either way).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mailroom import lazy_imports
from mailroom.domain.contacts import Contact, Email, Phone, PostalAddress

# ``vobject`` (~10 ms) is imported by the functions that read or write cards, not with this module:
# the contacts function imports it for its import and export routes, which few requests use.
# Declared, so that with SnapStart it is loaded before the snapshot.
lazy_imports.declare("vobject")

MAX_CARD_CHARS = 256 * 1024
_FOLD_RE = re.compile(r"\r?\n[ \t]")
_BEGIN_RE = re.compile(r"^BEGIN:VCARD\s*$", re.IGNORECASE)
_END_RE = re.compile(r"^END:VCARD\s*$", re.IGNORECASE)
# TYPE values that say what kind of entry a value is, not its label.
_NOT_LABELS = {"internet", "pref", "voice", "x400", "msg", "encoding", "b", "uri"}


@dataclass(frozen=True, slots=True)
class Card:
    """One card of a file: its position (1-based), and the contact or why it could not be read."""

    position: int
    contact: Contact | None
    error: str | None = None
    uid: str | None = None


def split_cards(text: str) -> Iterator[tuple[int, str]]:
    """Each ``BEGIN:VCARD`` … ``END:VCARD`` block, numbered from 1, still folded as written."""
    unfolded_lines = _FOLD_RE.sub("", text.replace("\r\n", "\n")).split("\n")
    position, current = 0, None
    for line in unfolded_lines:
        if _BEGIN_RE.match(line):
            if current is not None:  # a card never ended: what follows starts the next one
                position += 1
                yield position, "\n".join(current)
            current = [line]
        elif current is not None:
            current.append(line)
            if _END_RE.match(line):
                position += 1
                yield position, "\n".join(current)
                current = None
    if current is not None:
        position += 1
        yield position, "\n".join(current)


def looks_like_vcard(text: str) -> bool:
    return bool(re.search(r"^BEGIN:VCARD\s*$", text[:4096], re.IGNORECASE | re.MULTILINE))


def read_cards(text: str) -> Iterator[Card]:
    import vobject

    for position, block in split_cards(text):
        if len(block) > MAX_CARD_CHARS:
            yield Card(position, None, f"the card is larger than {MAX_CARD_CHARS // 1024} KiB")
            continue
        if not _END_RE.match(block.rsplit("\n", 1)[-1]):
            yield Card(position, None, "the card has no END:VCARD")
            continue
        try:
            component = vobject.readOne(block + "\r\n", ignoreUnreadable=False)
            yield Card(position, _contact(component), uid=_first(component, "uid"))
        except Exception as exc:  # vobject raises many kinds (ParseError, binascii.Error, ...)
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            yield Card(position, None, f"not a readable vCard: {detail}")


def _values(component: Any, name: str) -> list[Any]:
    return list(component.contents.get(name, []))


def _first(component: Any, name: str) -> str | None:
    for line in _values(component, name):
        value = line.value
        if isinstance(value, list):
            value = ";".join(str(v) for v in value if v)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _label(line: Any, labels: dict[str, str]) -> str | None:
    """A value's label: Apple's ``itemN.X-ABLabel`` when the group has one, else its TYPE."""
    if line.group and line.group.lower() in labels:
        return _apple_label(labels[line.group.lower()])
    kinds = [
        str(t).lower()
        for t in line.params.get("TYPE", [])
        for t in str(t).split(",")
        if str(t).strip().lower() not in _NOT_LABELS
    ]
    return kinds[0] if kinds else None


def _apple_label(value: str) -> str:
    # Apple writes its standard labels as _$!<Mobile>!$_; custom ones as they are.
    match = re.fullmatch(r"_\$!<(.+)>!\$_", value.strip())
    return (match.group(1) if match else value.strip()).lower()


def _preferred_first(lines: list[Any]) -> list[Any]:
    def rank(line: Any) -> int:
        types = {str(t).lower() for t in line.params.get("TYPE", [])}
        pref = line.params.get("PREF")
        return 0 if "pref" in types or pref else 1

    return sorted(lines, key=rank)


def _contact(component: Any) -> Contact:
    from vobject.vcard import Address

    labels = {
        line.group.lower(): str(line.value)
        for line in _values(component, "x-ablabel")
        if line.group and isinstance(line.value, str)
    }
    name = _values(component, "n")
    structured = name[0].value if name else None
    org = _values(component, "org")
    organization = None
    if org:
        parts = org[0].value if isinstance(org[0].value, list) else [org[0].value]
        organization = next((str(p) for p in parts if str(p).strip()), None)
    photo_url = None
    for line in _values(component, "photo"):
        if isinstance(line.value, str) and line.value.lower().startswith(("http://", "https://")):
            photo_url = line.value.strip()
            break
    emails = [
        Email(str(line.value), _label(line, labels))
        for line in _preferred_first(_values(component, "email"))
        if isinstance(line.value, str) and line.value.strip()
    ]
    phones = [
        Phone(str(line.value), _label(line, labels))
        for line in _preferred_first(_values(component, "tel"))
        if isinstance(line.value, str) and line.value.strip()
    ]
    postal = []
    for line in _values(component, "adr"):
        value = line.value
        if isinstance(value, Address):
            postal.append(
                PostalAddress(
                    label=_label(line, labels),
                    street=_joined(value.street) or _joined(value.box),
                    city=_joined(value.city),
                    region=_joined(value.region),
                    postal_code=_joined(value.code),
                    country=_joined(value.country),
                )
            )
    given, family = _joined(getattr(structured, "given", None)), _joined(getattr(structured, "family", None))
    formatted = _first(component, "fn")
    if formatted == organization and not (given or family):
        formatted = None  # a company's card (Apple's X-ABShowAs:COMPANY): FN only repeats ORG
    return Contact(
        name=formatted,
        given_name=given,
        family_name=family,
        nickname=_first(component, "nickname"),
        emails=tuple(emails),
        phones=tuple(phones),
        organization=organization,
        title=_first(component, "title"),
        notes=_first(component, "note"),
        birthday=_first(component, "bday"),
        addresses=tuple(postal),
        photo_url=photo_url,
    )


def _joined(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(str(v) for v in value if v)
    text = str(value).strip()
    return text or None


def write_cards(contacts: Iterable[tuple[str, Contact]]) -> Iterator[str]:
    """vCard 4.0 text, one card per ``(id, contact)``, CRLF line ends as RFC 6350 requires."""
    import vobject

    for contact_id, contact in contacts:
        card = vobject.vCard()
        card.add("version").value = "4.0"
        card.add("uid").value = f"urn:mailroom:{contact_id}"
        card.add("fn").value = contact.display_name or (contact.emails[0].address if contact.emails else "")
        card.add("n").value = vobject.vcard.Name(
            family=contact.family_name or "", given=contact.given_name or ""
        )
        if contact.nickname:
            card.add("nickname").value = contact.nickname
        for position, email in enumerate(contact.emails):
            line = card.add("email")
            line.value = email.address
            if email.label:
                line.params["TYPE"] = [email.label]
            if position == 0:
                line.params["PREF"] = ["1"]
        for phone in contact.phones:
            line = card.add("tel")
            line.value = phone.number
            if phone.label:
                line.params["TYPE"] = [phone.label]
        for where in contact.addresses:
            line = card.add("adr")
            line.value = vobject.vcard.Address(
                street=where.street or "",
                city=where.city or "",
                region=where.region or "",
                code=where.postal_code or "",
                country=where.country or "",
            )
            if where.label:
                line.params["TYPE"] = [where.label]
        if contact.organization:
            card.add("org").value = [contact.organization]
        if contact.title:
            card.add("title").value = contact.title
        if contact.notes:
            card.add("note").value = contact.notes
        if contact.birthday:
            # RFC 6350's basic format: 19850412, or --0412 without the year.
            day = contact.birthday
            card.add("bday").value = (
                "--" + day[2:].replace("-", "") if day.startswith("--") else day.replace("-", "")
            )
        if contact.photo_url:
            card.add("photo").value = contact.photo_url
        yield str(card.serialize())

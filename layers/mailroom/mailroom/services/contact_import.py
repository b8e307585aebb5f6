"""Importing and exporting a mailbox's contacts: vCard 3.0/4.0 and CSV (Google, Outlook, plain) in,
vCard 4.0 or CSV (Google layout) out.

An import reports every card or row: ``imported`` (a new contact), ``merged`` (into a contact that
already has one of its addresses, or that its vCard UID names: an export re-imported merges), or
``skipped`` with the reason. A malformed card or a bad field skips that one record only. Records of
the same file sharing an address are merged before anything is written, so each contact is
written once (one transaction; up to ``WRITERS`` at a time).

AWS calls per import: one BatchGetItem per 100 addresses (which contacts exist), one per 100
existing contacts (their current fields), and one transaction per contact written.

The report is always answered: API Gateway gives up on a request after 30 seconds, and a large
file's writes all go to one partition (the mailbox's), which DynamoDB throttles beyond its write
rate. Records not written within ``TIME_BUDGET_SECONDS``, or whose write AWS refused for now
(throttling, a transaction conflict, an outage: retryable), are reported ``skipped`` with a reason
saying to send them again, instead of the whole request failing with the written ones unknown.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mailroom import clock, errors, ids
from mailroom.domain import contacts as rules
from mailroom.domain import contacts_csv, vcard
from mailroom.domain.contacts import Contact, InvalidContact
from mailroom.observability import logger
from mailroom.services import contacts as service
from mailroom.services import exports
from mailroom.services.message_downloads import Download
from mailroom.store import contacts as store
from mailroom.store.errors import StoreError
from mailroom.store.table import Item, Table

MAX_RECORDS = 10_000
WRITERS = 8
# From the start of the import (reading included); the function's timeout is 29 s.
TIME_BUDGET_SECONDS = 20.0
OUT_OF_TIME = "not written: the request ran out of time first; send this record again"
Format = Literal["vcard", "csv"]


@dataclass(slots=True)
class _Target:
    key: str
    contact: Contact
    existing: Item | None
    positions: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportReport:
    results: list[dict[str, Any]]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)

    def view(self) -> dict[str, Any]:
        return {
            "imported": self.count("imported"),
            "merged": self.count("merged"),
            "skipped": self.count("skipped"),
            "results": self.results,
        }


def _records(fmt: Format, content: str) -> list[tuple[int, Contact | None, str | None, str | None]]:
    """(position, contact, why skipped, vCard UID) for every card or row of the file."""
    if fmt == "vcard":
        if not vcard.looks_like_vcard(content):
            raise errors.validation("the content holds no BEGIN:VCARD", field="content", code="invalid_vcard")
        return [(c.position, c.contact, c.error, c.uid) for c in vcard.read_cards(content)]
    try:
        return [(r.position, r.contact, r.error, None) for r in contacts_csv.read_rows(content)]
    except contacts_csv.UnknownLayout as exc:
        raise errors.validation(str(exc), field="content", code="unknown_csv_layout") from exc


def import_contacts(table: Table, mailbox: Item, fmt: Format, content: str) -> ImportReport:
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    org_id, mailbox_id = str(mailbox["org_id"]), str(mailbox["id"])
    records = _records(fmt, content)
    if len(records) > MAX_RECORDS:
        raise errors.validation(
            f"the file holds {len(records)} contacts; at most {MAX_RECORDS} per import (split it)",
            field="content",
            code="too_many_contacts",
        )
    results: dict[int, dict[str, Any]] = {}
    cleaned: list[tuple[int, Contact, str | None]] = []
    for position, contact, problem, uid in records:
        if contact is None:
            results[position] = {"position": position, "status": "skipped", "reason": problem}
            continue
        try:
            normalized = rules.normalize(contact)
        except InvalidContact as exc:
            results[position] = {"position": position, "status": "skipped", "reason": str(exc)}
            continue
        if normalized.is_empty():
            results[position] = {
                "position": position,
                "status": "skipped",
                "reason": "no name, email address or phone number",
            }
            continue
        cleaned.append((position, normalized, uid))

    all_addresses = {a for _, c, _ in cleaned for a in c.email_addresses}
    owners = store.owners(table, org_id, mailbox_id, all_addresses) if all_addresses else {}
    named = {
        uid.removeprefix("urn:mailroom:")
        for _, _, uid in cleaned
        if uid and ids.is_id(uid.removeprefix("urn:mailroom:"), "ct")
    }
    existing = store.get_many(table, org_id, mailbox_id, set(owners.values()) | named)

    targets: dict[str, _Target] = {}
    address_target: dict[str, str] = {a: f"ct:{c}" for a, c in owners.items() if c in existing}
    notes: dict[int, str] = {}
    for position, record, uid in cleaned:
        contact = record
        key = None
        uid_id = (uid or "").removeprefix("urn:mailroom:")
        if uid_id in existing:
            key = f"ct:{uid_id}"
        if key is None:
            key = next((address_target[a] for a in contact.email_addresses if a in address_target), None)
        if key is None:
            key = f"new:{position}"
        # Addresses another contact already has stay with it.
        elsewhere = [a for a in contact.email_addresses if address_target.get(a, key) != key]
        if elsewhere:
            contact = replace(contact, emails=tuple(e for e in contact.emails if e.address not in elsewhere))
            notes[position] = f"left out (another contact has them): {', '.join(elsewhere)}"
        target = targets.get(key)
        if target is None:
            base = existing.get(key.removeprefix("ct:")) if key.startswith("ct:") else None
            start = service.contact_of(base) if base is not None else contact
            target = targets[key] = _Target(key, start, base)
            if base is not None:
                target.contact = rules.merge(start, contact)
        else:
            target.contact = rules.merge(target.contact, contact)
        target.positions.append(position)
        for address in contact.email_addresses:
            address_target.setdefault(address, key)

    def write(target: _Target) -> tuple[_Target, Item | None, str | None]:
        try:
            if target.existing is None:
                if time.monotonic() > deadline:
                    return target, None, OUT_OF_TIME
                return target, service.write_new(table, mailbox, target.contact), None
            if target.contact == service.contact_of(target.existing):
                return target, target.existing, None
            if time.monotonic() > deadline:
                return target, None, OUT_OF_TIME
            return target, service.write_over(table, mailbox, target.existing, target.contact), None
        except errors.MailroomError as exc:
            return target, None, exc.message
        except InvalidContact as exc:  # a merge beyond a limit
            return target, None, str(exc)
        except StoreError as exc:
            if not exc.retryable:
                raise
            # botocore retried it already; the others may still go through.
            reason = (
                f"not written: AWS refused the write for now ({type(exc).__name__}); send this record again"
            )
            return target, None, reason

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        written = list(pool.map(write, targets.values()))
    for target, item, problem in written:
        for index, position in enumerate(target.positions):
            if item is None:
                results[position] = {"position": position, "status": "skipped", "reason": problem}
                continue
            status = "imported" if target.existing is None and index == 0 else "merged"
            result: dict[str, Any] = {"position": position, "status": status, "contact_id": item["id"]}
            if position in notes:
                result["reason"] = notes[position]
            results[position] = result
    report = ImportReport([results[p] for p in sorted(results)])
    logger().info(
        "contacts imported",
        extra={
            "format": fmt,
            "imported": report.count("imported"),
            "merged": report.count("merged"),
            "skipped": report.count("skipped"),
        },
    )
    return report


# ----------------------------------------------------------------------------- export

MEDIA_TYPES = {"vcard": "text/vcard; charset=utf-8", "csv": "text/csv; charset=utf-8"}
EXTENSIONS = {"vcard": "vcf", "csv": "csv"}


def export_contacts(table: Table, mailbox: Item, fmt: Format) -> Download:
    """The whole book as one file (``services.exports``: over 4 MiB, a pre-signed link)."""
    items = store.all_contacts(table, mailbox["org_id"], mailbox["id"])
    if fmt == "vcard":
        chunks = vcard.write_cards((str(i["id"]), service.contact_of(i)) for i in items)
    else:
        chunks = contacts_csv.write_csv(service.contact_of(i) for i in items)
    data = "".join(chunks).encode("utf-8")
    filename = f"contacts-{clock.utcnow().date().isoformat()}.{EXTENSIONS[fmt]}"
    return exports.download(mailbox, data, media_type=MEDIA_TYPES[fmt], filename=filename)

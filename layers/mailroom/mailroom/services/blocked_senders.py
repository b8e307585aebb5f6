"""Senders a mailbox refuses: an address (``someone@example.org``) or a whole domain (``@example.org``).

A pattern is stored lower case (IDN domains as punycode) and is the blocked sender's id. The
per-mailbox limit and the uniqueness of a pattern are conditions of the adding transaction
(``store.blocked_senders``), counted on the mailbox item, so lists show a maintained total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import errors
from mailroom.domain import addresses
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.store import blocked_senders as store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

MAX_PER_MAILBOX = store.MAX_PER_MAILBOX


@dataclass(frozen=True, slots=True)
class BlockedListing:
    page: Page
    views: list[dict[str, Any]]
    total: int


def block_pattern(raw: str) -> str:
    """``someone@example.org`` or ``@example.org`` (the whole domain), lower case."""
    value = raw.strip()
    try:
        if value.startswith("@"):
            return "@" + normalize_domain(value[1:]).lower()
        return addresses.normalize_any(value).lower()
    except (addresses.InvalidAddress, InvalidDomainName) as exc:
        raise errors.validation(
            f"'{value[:80]}' is neither an address nor @domain: {exc}",
            field="pattern",
            code="invalid_pattern",
        ) from exc


def blocked_view(item: Item) -> dict[str, Any]:
    pattern = item["pattern"]
    return {
        "id": pattern,
        "pattern": pattern,
        "type": "domain" if pattern.startswith("@") else "address",
        "created_at": item.get("created_at"),
    }


def list_blocked(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> BlockedListing:
    page = store.list_page(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)
    total = max(0, int(mailbox.get("blocked_sender_count", 0)))
    return BlockedListing(page, [blocked_view(i) for i in page.items], total)


def block(table: Table, mailbox: Item, raw: str) -> dict[str, Any]:
    pattern = block_pattern(raw)
    try:
        item = store.add(table, mailbox["org_id"], mailbox["id"], pattern)
    except ConditionFailed as exc:
        raise errors.conflict(f"{pattern} is already blocked", code="already_blocked") from exc
    except store.LimitReached as exc:
        raise errors.validation(str(exc), field="pattern", code="blocked_sender_limit_reached") from exc
    return blocked_view(item)


def unblock(table: Table, mailbox: Item, raw: str) -> None:
    pattern = raw.strip().lower()
    if not pattern or not store.remove(table, mailbox["org_id"], mailbox["id"], pattern):
        raise errors.not_found("Blocked sender")

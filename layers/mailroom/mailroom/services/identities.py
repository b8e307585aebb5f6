"""Sending identities of a mailbox: a From address with a display name, a Reply-To, a text and an
HTML signature, and at most one default (used by a send that names neither ``from`` nor
``identity_id``).

Which addresses a mailbox may send as (checked when an identity is saved and again on each send,
since aliases and domains change): its own address; an active alias of the organization that
delivers to it; or an address on a *verified* domain of the organization that is not any
mailbox's, alias's or pending invite's address (the policy: never a colleague's address, never a
domain SES cannot sign). Anything else is 422 ``identity_not_allowed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import addresses as address_rules
from mailroom.domain.addresses import InvalidAddress, InvalidDisplayName
from mailroom.mail.addresses import Address, stored_name
from mailroom.services.sending import Sender
from mailroom.store import addresses, domains
from mailroom.store import aliases as alias_store
from mailroom.store import compose_items as store
from mailroom.store.compose_items import Kind
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

MAX_PER_MAILBOX = 50
MAX_SIGNATURE_CHARS = 10_000
MAX_REPLY_TO = 10


@dataclass(slots=True)
class IdentityFields:
    address: str
    name: str | None = None
    reply_to: list[str] | None = None
    signature_text: str | None = None
    signature_html: str | None = None


def not_allowed(address: str) -> errors.MailroomError:
    return errors.Invalid(
        "identity_not_allowed",
        f"{address} is not an address this mailbox can send as",
        fields=[
            {
                "field": "address",
                "message": "not this mailbox's address, an alias delivering to it, "
                "or a free address on a verified domain of the organization",
            }
        ],
        hint="Use the mailbox's address, an active alias whose targets include it, or an unused "
        "address on a verified domain.",
    )


def allowed_domain(table: Table, mailbox: Item, address: str) -> str | None:
    """The domain id an identity address sends through, or ``identity_not_allowed``."""
    own = str(mailbox["address"]).lower()
    org_id = str(mailbox["org_id"])
    if address == own:
        return mailbox.get("domain_id")
    entry = addresses.resolve(table, org_id, address)
    if entry is not None:
        alias = alias_store.get(table, org_id, entry["id"]) if entry.get("kind") == "alias" else None
        if (
            alias is not None
            and alias.get("active", True)
            and own in {str(t).lower() for t in alias.get("goto") or []}
        ):
            return alias.get("domain_id")
        raise not_allowed(address)
    domain = domains.get_by_name(table, org_id, address_rules.domain_of(address))
    if domain is None or domain.get("status") != "verified":
        raise not_allowed(address)
    return str(domain["id"])


def _clean(fields: IdentityFields) -> dict[str, Any]:
    try:
        address = address_rules.normalize_any(fields.address)
        name = address_rules.check_display_name(fields.name)
    except (InvalidAddress, InvalidDisplayName) as exc:
        raise errors.validation(
            str(exc), field="address" if isinstance(exc, InvalidAddress) else "name"
        ) from exc
    reply_to = []
    for position, value in enumerate(fields.reply_to or []):
        try:
            reply_to.append(address_rules.normalize_any(value))
        except InvalidAddress as exc:
            raise errors.validation(str(exc), field=f"reply_to.{position}") from exc
    for field_name in ("signature_text", "signature_html"):
        value = getattr(fields, field_name)
        if value is not None and ("\x00" in value or len(value) > MAX_SIGNATURE_CHARS):
            raise errors.validation(
                f"at most {MAX_SIGNATURE_CHARS} characters, without NUL", field=field_name
            )
    return {
        "address": address,
        "name": name or None,
        "reply_to": list(dict.fromkeys(reply_to)),
        "signature_text": fields.signature_text or None,
        "signature_html": fields.signature_html or None,
    }


def view(item: Item, mailbox: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "address": item["address"],
        "name": item.get("name"),
        "from": str(Address(item.get("name") or "", item["address"])),
        "reply_to": list(item.get("reply_to") or []),
        "signature_text": item.get("signature_text"),
        "signature_html": item.get("signature_html"),
        "default": mailbox.get("default_identity_id") == item["id"],
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def load(table: Table, mailbox: Item, identity_id: str) -> Item:
    item = (
        store.get(table, Kind.IDENTITY, mailbox["org_id"], mailbox["id"], identity_id)
        if ids.is_id(identity_id, "idn")
        else None
    )
    if item is None:
        raise errors.not_found("Identity")
    return item


def list_identities(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    page = store.list_page(
        table, Kind.IDENTITY, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor
    )
    return page, max(0, int(mailbox.get("identity_count", 0)))


def create(table: Table, mailbox: Item, fields: IdentityFields, *, default: bool) -> dict[str, Any]:
    cleaned = _clean(fields)
    domain_id = allowed_domain(table, mailbox, cleaned["address"])
    now = clock.now_iso()
    item: Item = {
        "id": ids.new_id("idn"),
        "org_id": mailbox["org_id"],
        "mailbox_id": mailbox["id"],
        **cleaned,
        "domain_id": domain_id,
        "created_at": now,
        "updated_at": now,
    }
    try:
        store.create(table, Kind.IDENTITY, item, limit=MAX_PER_MAILBOX, make_default=default)
    except store.LimitReached as exc:
        raise errors.LimitReached("identity_limit_reached", str(exc)) from exc
    shown = {**mailbox, "default_identity_id": item["id"]} if default else mailbox
    return view(item, shown)


def update(
    table: Table, mailbox: Item, item: Item, changes: dict[str, Any], *, default: bool | None
) -> dict[str, Any]:
    merged = IdentityFields(
        address=str(changes.get("address", item["address"])),
        name=changes.get("name", item.get("name")),
        reply_to=changes.get("reply_to", item.get("reply_to")),
        signature_text=changes.get("signature_text", item.get("signature_text")),
        signature_html=changes.get("signature_html", item.get("signature_html")),
    )
    cleaned = _clean(merged)
    if cleaned["address"] != item["address"]:
        cleaned["domain_id"] = allowed_domain(table, mailbox, cleaned["address"])
    try:
        fresh = store.update(
            table, Kind.IDENTITY, item, {**cleaned, "updated_at": clock.now_iso()}, default=default
        )
    except ConditionFailed as exc:
        raise errors.not_found("Identity") from exc
    if default is True:
        mailbox = {**mailbox, "default_identity_id": item["id"]}
    elif default is False and mailbox.get("default_identity_id") == item["id"]:
        mailbox = {k: v for k, v in mailbox.items() if k != "default_identity_id"}
    return view(fresh, mailbox)


def delete(table: Table, item: Item) -> None:
    if not store.remove(table, Kind.IDENTITY, item):
        raise errors.not_found("Identity")


@dataclass(frozen=True, slots=True)
class Chosen:
    """An identity as a send applies it."""

    identity_id: str
    sender: Sender
    reply_to: list[str]
    signature_text: str | None
    signature_html: str | None


def for_send(table: Table, mailbox: Item, identity_id: str | None) -> Chosen | None:
    """The identity a send uses: the one named, else the mailbox's default (one that was deleted
    meanwhile is no default), re-checked against today's aliases and domains."""
    if identity_id is None:
        default_id = mailbox.get("default_identity_id")
        if not default_id:
            return None
        item = store.get(table, Kind.IDENTITY, mailbox["org_id"], mailbox["id"], str(default_id))
        if item is None:
            return None
    else:
        try:
            item = load(table, mailbox, identity_id)
        except errors.NotFound as exc:
            raise errors.validation(
                f"no identity {identity_id[:64]} in this mailbox",
                field="identity_id",
                code="unknown_identity",
            ) from exc
    domain_id = allowed_domain(table, mailbox, str(item["address"]))
    return Chosen(
        identity_id=str(item["id"]),
        sender=Sender(
            Address(
                str(item.get("name") or stored_name(str(mailbox.get("name") or ""))), str(item["address"])
            ),
            domain_id,
        ),
        reply_to=list(item.get("reply_to") or []),
        signature_text=item.get("signature_text"),
        signature_html=item.get("signature_html"),
    )

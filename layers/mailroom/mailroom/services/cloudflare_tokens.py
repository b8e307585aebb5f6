"""Cloudflare API tokens a tenant gives Mailroom: checked with Cloudflare, sealed with the stack's
KMS key (bound to the organization and the token's id by the encryption context), listed by their
first characters only and never returned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mailroom import clock, errors, ids
from mailroom.store import dns_setup, kms, organizations
from mailroom.store.cloudflare_zones import CloudflareZones
from mailroom.store.errors import (
    ConditionFailed,
    CredentialsRefused,
    InvalidRequest,
    ObjectMissing,
    StoreError,
    Throttled,
)
from mailroom.store.table import Item, Page, Table

PREFIX_LENGTH = 6  # characters of a token shown in listings (of ~40: the rest stays secret)


@contextmanager
def cloudflare_errors() -> Iterator[None]:
    """Cloudflare's refusals and outages as the product's errors."""
    try:
        yield
    except CredentialsRefused as exc:
        raise errors.Invalid(
            "cloudflare_token_invalid",
            f"Cloudflare refused the token: {exc.message}",
            hint="Create a token with Zone:Read and DNS:Edit permissions for the zone.",
        ) from exc
    except ObjectMissing as exc:
        raise errors.Invalid(
            "zone_not_found",
            "The token cannot see that zone, or may not edit its DNS records.",
            hint="List the zones with this token; it needs Zone:Read and DNS:Edit on the zone.",
        ) from exc
    except ConditionFailed as exc:
        raise errors.conflict(
            "A record appeared in the zone meanwhile.", code="zone_changed", hint="Preview again."
        ) from exc
    except InvalidRequest as exc:
        raise errors.UpstreamFailed(
            "provider_error", f"Cloudflare refused the request: {exc.message}"
        ) from exc
    except Throttled as exc:
        raise errors.Unavailable(
            "provider_unavailable", "Cloudflare is rate-limiting requests.", retry_after=30
        ) from exc
    except StoreError as exc:
        if exc.service != "cloudflare":
            raise
        if exc.retryable:
            raise errors.Unavailable(
                "provider_unavailable", f"Cloudflare is unavailable: {exc.message}"
            ) from exc
        raise errors.UpstreamFailed(
            "provider_error", f"Cloudflare refused the request: {exc.message}"
        ) from exc


def token_context(org_id: str, token_id: str) -> dict[str, str]:
    return {"org_id": org_id, "cloudflare_token_id": token_id}


def validate(token: str) -> dict[str, Any]:
    """What Cloudflare says of a token: ``valid`` (active and usable now), its status and expiry."""
    try:
        with cloudflare_errors():
            found = CloudflareZones(token).verify()
    except errors.Invalid as refused:
        if refused.code != "cloudflare_token_invalid":
            raise
        return {"valid": False, "status": "invalid", "cloudflare_token_id": None, "expires_on": None}
    return {
        "valid": found["status"] == "active",
        "status": found["status"],
        "cloudflare_token_id": found["id"],
        "expires_on": found["expires_on"],
    }


def _active(token: str) -> dict[str, Any]:
    checked = validate(token)
    if not checked["valid"]:
        raise errors.Invalid(
            "cloudflare_token_invalid",
            f"The token is {checked['status']} at Cloudflare.",
            hint="Create a token with Zone:Read and DNS:Edit permissions for the zone.",
        )
    return checked


def store_token(table: Table, org_id: str, token: str, *, name: str | None) -> Item:
    """Keep an active token (sealed) for later previews and applies; its item (no secret)."""
    checked = _active(token)
    token_id = ids.new_id("cft")
    now = clock.now_iso()
    item: Item = {
        "id": token_id,
        "org_id": org_id,
        "name": name,
        "token_prefix": token[:PREFIX_LENGTH],
        "ciphertext": kms.encrypt(token.encode(), token_context(org_id, token_id)),
        "cloudflare_token_id": checked["cloudflare_token_id"],
        "expires_on": checked["expires_on"],
        "created_at": now,
        "last_used_at": None,
    }
    org = organizations.get(table, org_id) or {}
    limit = int((org.get("limits") or {}).get("cloudflare_tokens", dns_setup.DEFAULT_TOKEN_LIMIT))
    try:
        dns_setup.add_token(table, item, limit=limit)
    except dns_setup.TokenLimitReached as exc:
        raise errors.LimitReached(
            "cloudflare_token_limit_reached",
            f"The organization keeps at most {limit} Cloudflare tokens.",
            hint="Delete a token it no longer uses, or connect with the token_id of a stored one.",
        ) from exc
    return item


def load(table: Table, org_id: str, token_id: str) -> Item:
    item = dns_setup.get_token(table, org_id, token_id)
    if item is None:
        raise errors.not_found("Cloudflare token")
    return item


def unseal(item: Item) -> str:
    """The stored token itself, for a call to Cloudflare (never for a response)."""
    plaintext = kms.decrypt(bytes(item["ciphertext"]), token_context(item["org_id"], item["id"]))
    dns_setup.touch_token(Table(), item["org_id"], item["id"], clock.now_iso())
    return plaintext.decode()


@dataclass(frozen=True, slots=True)
class Listing:
    page: Page
    views: list[dict[str, Any]]
    total: int


def list_tokens(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> Listing:
    page = dns_setup.list_tokens(table, org_id, per_page=per_page, cursor=cursor)
    org = organizations.get(table, org_id) or {}
    return Listing(page, [token_view(t) for t in page.items], int(org.get("cloudflare_token_count", 0)))


def remove_token(table: Table, org_id: str, token_id: str) -> None:
    """Forget a stored token. Domains connected with it must be connected again to preview."""
    if not dns_setup.delete_token(table, org_id, token_id):
        raise errors.not_found("Cloudflare token")


def token_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item.get("name"),
        "token_prefix": item["token_prefix"],
        "cloudflare_token_id": item.get("cloudflare_token_id"),
        "expires_on": item.get("expires_on"),
        "created_at": item["created_at"],
        "last_used_at": item.get("last_used_at"),
    }

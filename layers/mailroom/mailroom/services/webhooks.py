"""Webhook endpoints: the use cases behind ``/api/v1/webhooks`` (and ``/api/v0/webhooks``); their
deliveries are ``services.webhook_deliveries``'.

A webhook's secret (``whsec_`` + 32 random bytes, base64) is returned once, when it is created or
rotated, and stored only encrypted with the stack's KMS key. Rotation keeps the previous secret
signing next to the new one for 24 hours (two ``v1,`` signatures), so receivers can switch over
without dropping a delivery.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import event_buses, ssrf
from mailroom.domain import webhooks as rules
from mailroom.errors import LimitReached
from mailroom.services.webhook_delivery import secret_context
from mailroom.settings import get_settings
from mailroom.store import keys, kms, organizations, webhooks
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table

ROTATION_OVERLAP = timedelta(hours=24)
MAX_PREVIOUS_SECRETS = 2  # rotating again within a day keeps the one before too, up to this many
RESOLVE_TIMEOUT_SECONDS = 3.0


class UrlNotAllowed(ValueError):
    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class ConcurrentChange(Exception):
    pass


async def check_url(raw: str, *, allow_private: bool) -> str:
    """Validate a webhook URL as it is saved: syntax, https, and a host that resolves to public
    addresses only (the same rule is enforced again on every connection)."""
    try:
        parsed = rules.parse_url(raw, allow_http=allow_private)
    except rules.InvalidWebhookUrl as exc:
        raise UrlNotAllowed(str(exc), code="invalid_webhook_url") from exc
    if allow_private:
        return raw
    from mailroom.webhook_http import system_resolver

    try:
        addresses = await asyncio.wait_for(
            system_resolver(parsed.host, parsed.port), timeout=RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError) as exc:
        raise UrlNotAllowed(
            f"{parsed.host} does not resolve; publish its DNS record first", code="webhook_url_unresolvable"
        ) from exc
    for address in addresses:
        reason = ssrf.block_reason(address)
        if reason is not None:
            raise UrlNotAllowed(
                f"{parsed.host} resolves to {address} ({reason}); webhooks only reach public addresses",
                code="webhook_url_not_allowed",
            )
    return raw


async def valid_url(url: str) -> str:
    """``check_url`` for an API request: 422 on the ``url`` field when it is refused."""
    try:
        return await check_url(url, allow_private=get_settings().webhook_allow_private)
    except UrlNotAllowed as exc:
        raise errors.validation(str(exc), field="url", code=exc.code) from exc


def valid_event_bus(arn: str) -> str:
    """An EventBridge destination's bus ARN for an API request: 422 on ``event_bus_arn`` unless it
    is an event bus ARN (``invalid_event_bus_arn``) in an account the stack delivers to
    (``event_bus_not_allowed``)."""
    try:
        event_buses.check_allowed(event_buses.parse_arn(arn), get_settings().eventbridge_accounts)
    except event_buses.InvalidEventBusArn as exc:
        raise errors.validation(str(exc), field="event_bus_arn", code="invalid_event_bus_arn") from exc
    except event_buses.EventBusNotAllowed as exc:
        raise errors.validation(str(exc), field="event_bus_arn", code="event_bus_not_allowed") from exc
    return arn


def destination(item: Item) -> str:
    """Where a webhook sends: its https URL, or its event bus's ARN."""
    return str(item.get("event_bus_arn") or item["url"])


def load(table: Table, org_id: str, webhook_id: str) -> Item:
    webhook = webhooks.get(table, org_id, webhook_id)
    if webhook is None:
        raise errors.not_found("Webhook")
    return webhook


def webhook_view(item: Item) -> dict[str, Any]:
    previous = [s for s in item.get("secrets") or [] if s.get("expires_at")]
    return {
        "id": item["id"],
        "destination": "eventbridge" if item.get("event_bus_arn") else "https",
        "url": item.get("url"),
        "event_bus_arn": item.get("event_bus_arn"),
        "event_types": list(item.get("event_types") or []),
        "mailbox_ids": list(item.get("mailbox_ids") or []),
        "enabled": bool(item.get("enabled")),
        "description": item.get("description"),
        "client_id": item.get("client_id"),
        "disabled_reason": item.get("disabled_reason"),
        "disabled_at": item.get("disabled_at"),
        "failing_since": item.get("first_failure_at"),
        "secret_last_four": item.get("secret_last_four"),
        "secret_rotated_at": item.get("secret_rotated_at"),
        "previous_secret_expires_at": max((s["expires_at"] for s in previous), default=None),
        "delivery_count": int(item.get("delivery_count", 0)),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def _encrypted(secret: str, org_id: str, webhook_id: str, now_iso: str) -> dict[str, Any]:
    return {
        "ciphertext": kms.encrypt(secret.encode(), secret_context(org_id, webhook_id)),
        "created_at": now_iso,
        "expires_at": None,
    }


def missing_mailboxes(table: Table, org_id: str, mailbox_ids: Sequence[str]) -> list[str]:
    wanted = [(keys.org_pk(org_id), keys.mailbox_sk(m)) for m in mailbox_ids]
    found = webhooks.batch_get(table, wanted)
    return [m for m, k in zip(mailbox_ids, wanted, strict=True) if k not in found]


def check_mailboxes(
    table: Table, org_id: str, mailbox_ids: Sequence[str], *, field: str = "mailbox_ids"
) -> None:
    """422 ``unknown_mailbox`` unless every id is a mailbox of the organization (``field``: how the
    request names the filter: ``mailbox_ids`` in v1, ``inbox_ids`` in v0)."""
    missing = missing_mailboxes(table, org_id, mailbox_ids) if mailbox_ids else []
    if missing:
        raise errors.validation(
            f"not mailboxes of this organization: {', '.join(missing)}", field=field, code="unknown_mailbox"
        )


@dataclass(frozen=True, slots=True)
class NewWebhook:
    url: str | None  # an https endpoint, or
    event_types: list[str]
    mailbox_ids: list[str]
    enabled: bool = True
    description: str | None = None
    client_id: str | None = None
    event_bus_arn: str | None = None  # an EventBridge destination (exactly one of the two)


def create_webhook(table: Table, org_id: str, request: NewWebhook) -> tuple[Item, str]:
    """The webhook and its secret (plaintext, to show once). WebhookLimitReached at the limit."""
    org = organizations.get(table, org_id) or {}
    limit = int((org.get("limits") or {}).get("webhooks", webhooks.DEFAULT_LIMIT))
    now_iso = clock.now_iso()
    webhook_id = ids.new_id("wh")
    secret = rules.new_secret()
    item: Item = {
        "id": webhook_id,
        "org_id": org_id,
        **({"event_bus_arn": request.event_bus_arn} if request.event_bus_arn else {"url": request.url}),
        "event_types": list(request.event_types),
        "mailbox_ids": list(request.mailbox_ids),
        "enabled": request.enabled,
        "description": request.description,
        "client_id": request.client_id,
        "disabled_reason": None if request.enabled else "manual",
        "disabled_at": None if request.enabled else now_iso,
        "secrets": [_encrypted(secret, org_id, webhook_id, now_iso)],
        "secret_version": 1,
        "secret_last_four": secret[-4:],
        "secret_rotated_at": None,
        "delivery_count": 0,
        "created_at": now_iso,
        "updated_at": now_iso,
    }
    webhooks.create(table, item, limit=limit)
    return item, secret


def add_webhook(table: Table, org_id: str, request: NewWebhook) -> tuple[Item, str]:
    """``create_webhook`` for an API request: 422 ``webhook_limit_reached`` at the limit."""
    try:
        return create_webhook(table, org_id, request)
    except webhooks.WebhookLimitReached as exc:
        raise LimitReached(
            "webhook_limit_reached",
            "The organization has reached its webhook limit.",
            hint="Delete a webhook, or subscribe an existing one to more event types.",
        ) from exc


def update_webhook(
    table: Table, webhook: Item, changes: dict[str, Any], *, remove: Sequence[str] = ()
) -> Item:
    """Apply a PATCH (``remove``: attributes it drops). Enabling clears why it was disabled and
    restarts the failure clock."""
    now_iso = clock.now_iso()
    fields: dict[str, Any] = {**changes, "updated_at": now_iso}
    remove = list(remove)
    if "enabled" in changes and bool(changes["enabled"]) != bool(webhook.get("enabled")):
        if changes["enabled"]:
            remove += ["disabled_reason", "disabled_at", "first_failure_at"]
        else:
            fields |= {"disabled_reason": "manual", "disabled_at": now_iso}
    return webhooks.update(table, webhook["org_id"], webhook["id"], fields, remove=remove)


async def patch_webhook(
    table: Table,
    webhook: Item,
    changes: dict[str, Any],
    *,
    nullable: Sequence[str] = (),
    filter_field: str = "mailbox_ids",
) -> Item:
    """A PATCH of either API surface: ``changes`` as the request named them (its mailbox filter is
    called ``filter_field``); null refused except for ``nullable``; URL and filter validated."""
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise errors.validation(f"{name} cannot be null", field=name)
    fields = {("mailbox_ids" if name == filter_field else name): value for name, value in changes.items()}
    if "url" in fields and "event_bus_arn" in fields:
        raise errors.validation("send url or event_bus_arn, not both", field="event_bus_arn")
    # Setting one destination replaces the other: a webhook sends to exactly one.
    remove: list[str] = []
    if "url" in fields:
        fields["url"] = await valid_url(fields["url"])
        remove.append("event_bus_arn")
    if "event_bus_arn" in fields:
        fields["event_bus_arn"] = valid_event_bus(fields["event_bus_arn"])
        remove.append("url")
    if fields.get("mailbox_ids"):
        check_mailboxes(table, webhook["org_id"], fields["mailbox_ids"], field=filter_field)
    return update_webhook(table, webhook, fields, remove=remove)


def rotate_secret(table: Table, webhook: Item, *, now: datetime | None = None) -> tuple[Item, str]:
    """A new current secret; the old one keeps signing for 24 hours. ConcurrentChange if another
    rotation won the race (so no returned secret is silently dropped)."""
    now = now or clock.utcnow()
    now_iso = clock.isoformat(now)
    secret = rules.new_secret()
    kept = [s for s in webhook.get("secrets") or [] if not s.get("expires_at") or s["expires_at"] > now_iso]
    expiry = clock.isoformat(now + ROTATION_OVERLAP)
    previous = [{**s, "expires_at": s.get("expires_at") or expiry} for s in kept]
    previous.sort(key=lambda s: s["expires_at"], reverse=True)
    secrets = [
        _encrypted(secret, webhook["org_id"], webhook["id"], now_iso),
        *previous[:MAX_PREVIOUS_SECRETS],
    ]
    version = int(webhook.get("secret_version", 1))
    try:
        updated = webhooks.update(
            table,
            webhook["org_id"],
            webhook["id"],
            {
                "secrets": secrets,
                "secret_version": version + 1,
                "secret_last_four": secret[-4:],
                "secret_rotated_at": now_iso,
                "updated_at": now_iso,
            },
            condition="secret_version = :expected",
            condition_values={"expected": version},
        )
    except ConditionFailed as exc:
        raise ConcurrentChange from exc
    return updated, secret


def rotate(table: Table, webhook: Item) -> dict[str, Any]:
    """``rotate_secret`` for an API request: the webhook's view with its new ``secret`` (shown
    once); 409 ``concurrent_rotation`` when another rotation won the race."""
    try:
        item, secret = rotate_secret(table, webhook)
    except ConcurrentChange as exc:
        raise errors.conflict(
            "The secret was rotated by another request at the same time.",
            code="concurrent_rotation",
            hint="Send the request again (with a new Idempotency-Key) to rotate once more.",
        ) from exc
    return {**webhook_view(item), "secret": secret}


async def create(table: Table, org_id: str, request: NewWebhook) -> tuple[Item, dict[str, Any]]:
    """A v1 create: the URL and the mailbox filter checked (422 on the field), the webhook added
    (422 ``webhook_limit_reached``); the item and its view with the ``secret`` (shown once)."""
    if request.event_bus_arn is not None:
        checked = dataclasses.replace(request, url=None, event_bus_arn=valid_event_bus(request.event_bus_arn))
    elif request.url is not None:
        checked = dataclasses.replace(request, url=await valid_url(request.url))
    else:
        raise errors.validation("a webhook needs a url or an event_bus_arn", field="url")
    check_mailboxes(table, org_id, checked.mailbox_ids)
    item, secret = add_webhook(table, org_id, checked)
    return item, {**webhook_view(item), "secret": secret}


@dataclass(frozen=True, slots=True)
class WebhookListing:
    page: Page
    views: list[dict[str, Any]]
    total: int


def list_webhooks(table: Table, org_id: str, *, per_page: int, cursor: str | None) -> WebhookListing:
    """A page of the organization's webhooks; the total is its maintained ``webhook_count``."""
    page = webhooks.list_page(table, org_id, per_page=per_page, cursor=cursor)
    org = organizations.get(table, org_id) or {}
    return WebhookListing(page, [webhook_view(w) for w in page.items], int(org.get("webhook_count", 0)))


def delete_webhook(table: Table, org_id: str, webhook_id: str) -> None:
    """Delete the webhook and count it out, in one transaction (404 if there is none); its
    deliveries expire with their retention."""
    if not webhooks.delete(table, org_id, webhook_id):
        raise errors.not_found("Webhook")

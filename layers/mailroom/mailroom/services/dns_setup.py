"""DNS set-up through a provider: connect a domain to a zone, preview the change set, apply it.

The same use cases serve Cloudflare and Route 53 through ``domain.dns_providers.DnsZones``; this
module picks the implementation from the domain's connection and the credentials it names. A
preview is the exact change set (``domain.dns_changes.plan``) and the zone's records as seen; apply
makes those changes only, refuses when the zone changed meanwhile (409 ``zone_changed``), finishes
a partially made change set on a retry, records its result on the preview (a second apply answers
the same result) and then checks the domain's DNS (``services.domains.run_check``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import dns_changes
from mailroom.domain.dns_changes import Change, Plan, ZoneRecord
from mailroom.domain.dns_providers import DnsZones, Provider, Zone, zone_covers
from mailroom.services import cloudflare_tokens
from mailroom.services import domains as domain_service
from mailroom.settings import get_settings
from mailroom.store import dns_setup
from mailroom.store.cloudflare_zones import CloudflareZones
from mailroom.store.errors import (
    ConditionFailed,
    CredentialsRefused,
    InvalidRequest,
    ObjectMissing,
    StoreError,
)
from mailroom.store.route53_zones import Route53Zones
from mailroom.store.table import Item, Table

ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


# --- providers and their errors ----------------------------------------------------------------------


@contextmanager
def provider_errors(provider: Provider) -> Iterator[None]:
    """A provider's refusals and outages as the product's errors."""
    if provider == "cloudflare":
        with cloudflare_tokens.cloudflare_errors():
            yield
        return
    try:
        yield
    except CredentialsRefused as exc:
        raise errors.Invalid(
            "route53_role_refused",
            "The role could not be assumed.",
            hint="Its trust policy must allow this stack's role, with your organization id as "
            "sts:ExternalId.",
        ) from exc
    except ObjectMissing as exc:
        raise errors.Invalid("zone_not_found", "No such hosted zone.", hint="List the zones.") from exc
    except ConditionFailed as exc:
        raise errors.conflict(
            "The zone changed meanwhile.", code="zone_changed", hint="Preview again, then apply."
        ) from exc
    except InvalidRequest as exc:
        raise errors.UpstreamFailed("provider_error", f"Route 53 refused the request: {exc.message}") from exc
    except StoreError as exc:
        if exc.retryable:
            raise errors.Unavailable(
                "provider_unavailable", f"Route 53 is unavailable: {exc.message}"
            ) from exc
        if exc.service in ("route53", "sts"):
            raise errors.UpstreamFailed(
                "provider_error", f"Route 53 refused the request: {exc.message}"
            ) from exc
        raise


def route53_zones(org_id: str, role_arn: str | None) -> Route53Zones:
    """Route 53 through the tenant's role (external id: the organization's id), or the stack's own
    account when the operator allows it."""
    if role_arn is None:
        if not get_settings().route53_own_account:
            raise errors.validation(
                "role_arn is required: this stack does not share its own account's hosted zones",
                field="role_arn",
                code="role_arn_required",
            )
        return Route53Zones()
    if not ROLE_ARN_RE.match(role_arn):
        raise errors.validation("role_arn must be an IAM role ARN", field="role_arn")
    return Route53Zones(role_arn=role_arn, external_id=org_id)


def cloudflare_zones(
    table: Table, org_id: str, *, token: str | None, token_id: str | None
) -> CloudflareZones:
    if token is not None:
        return CloudflareZones(token)
    if token_id is None:
        raise errors.validation("token or token_id is required", field="token")
    return CloudflareZones(cloudflare_tokens.unseal(cloudflare_tokens.load(table, org_id, token_id)))


def list_zones(zones: DnsZones, *, name: str | None) -> list[dict[str, Any]]:
    with provider_errors(zones.provider):
        found = zones.zones(name=name)
    return [zone_view(z) for z in found]


def zone_view(zone: Zone) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "status": zone.status,
        "private": zone.private,
        "record_count": zone.record_count,
    }


# --- connect -----------------------------------------------------------------------------------------


def connect(
    table: Table,
    domain: Item,
    zones: DnsZones,
    zone_id: str,
    *,
    token_id: str | None = None,
    role_arn: str | None = None,
) -> Item:
    """Connect ``domain`` to the zone (replacing any earlier connection) once the credentials are
    known to see it and it is the domain's zone (its apex or a parent)."""
    return _connection(
        table, domain, _domain_zone(domain, zones, zone_id), zones.provider, token_id, role_arn
    )


def connect_cloudflare(
    table: Table, domain: Item, zone_id: str, *, token: str | None, token_id: str | None, name: str | None
) -> Item:
    """Connect ``domain`` with a new token (stored sealed, only once the zone is known to be the
    domain's: a failed connect keeps nothing) or a stored one (``token_id``)."""
    if token is None:
        if token_id is None:
            raise errors.validation("token or token_id is required", field="token")
        stored = cloudflare_tokens.load(table, domain["org_id"], token_id)
        zones = CloudflareZones(cloudflare_tokens.unseal(stored))
        return connect(table, domain, zones, zone_id, token_id=stored["id"])
    zone = _domain_zone(domain, CloudflareZones(token), zone_id)
    with provider_errors("cloudflare"):
        stored = cloudflare_tokens.store_token(table, domain["org_id"], token, name=name)
    return _connection(table, domain, zone, "cloudflare", stored["id"], None)


def _domain_zone(domain: Item, zones: DnsZones, zone_id: str) -> Zone:
    with provider_errors(zones.provider):
        zone = zones.zone(zone_id)
    if zone.private:
        raise errors.validation("a private hosted zone is not seen by the internet", field="zone_id")
    if not zone_covers(zone.name, domain["domain"]):
        raise errors.validation(
            f"zone {zone.name} does not hold {domain['domain']}", field="zone_id", code="zone_mismatch"
        )
    return zone


def _connection(
    table: Table, domain: Item, zone: Zone, provider: Provider, token_id: str | None, role_arn: str | None
) -> Item:
    connection: Item = {
        "org_id": domain["org_id"],
        "domain_id": domain["id"],
        "domain": domain["domain"],
        "provider": provider,
        "zone_id": zone.id,
        "zone_name": zone.name,
        "token_id": token_id,
        "role_arn": role_arn,
        "connected_at": clock.now_iso(),
    }
    dns_setup.put_connection(table, connection)
    return connection


def connection_view(connection: Item) -> dict[str, Any]:
    return {
        name: connection.get(name)
        for name in (
            "domain_id",
            "domain",
            "provider",
            "zone_id",
            "zone_name",
            "token_id",
            "role_arn",
            "connected_at",
        )
    }


def _connected(table: Table, domain: Item, provider: Provider) -> tuple[Item, DnsZones]:
    connection = dns_setup.get_connection(table, domain["org_id"], domain["id"])
    if connection is None or connection["provider"] != provider:
        raise errors.conflict(
            f"{domain['domain']} is not connected to {provider}",
            code="not_connected",
            hint=f"POST /api/v1/{provider}/connect first.",
        )
    if provider == "route53":
        return connection, route53_zones(domain["org_id"], connection.get("role_arn"))
    token = dns_setup.get_token(table, domain["org_id"], connection["token_id"])
    if token is None:
        raise errors.conflict(
            "The Cloudflare token this domain was connected with was deleted.",
            code="not_connected",
            hint="Connect the domain again with a token.",
        )
    return connection, CloudflareZones(cloudflare_tokens.unseal(token))


# --- preview -----------------------------------------------------------------------------------------


def _required_digest(required: list[Any]) -> str:
    text = "\n".join(f"{r.type} {r.name} {r.priority} {r.value}" for r in required)
    return hashlib.sha256(text.encode()).hexdigest()


def preview(table: Table, domain: Item, provider: Provider, *, replace_mx: bool) -> Item:
    """Read the zone at the domain's names and keep the change set that would publish its records."""
    connection, zones = _connected(table, domain, provider)
    required = domain_service.required_records(domain)
    with provider_errors(provider):
        zone_records = zones.records(connection["zone_id"], dns_changes.required_names(required))
    planned = dns_changes.plan(required, zone_records, replace_mx=replace_mx)
    now = clock.utcnow()
    expires = now + timedelta(seconds=get_settings().dns_preview_ttl_seconds)
    item: Item = {
        "id": ids.new_id("dpv"),
        "org_id": domain["org_id"],
        "domain_id": domain["id"],
        "domain": domain["domain"],
        "provider": provider,
        "zone_id": connection["zone_id"],
        "zone_name": connection["zone_name"],
        "replace_mx": replace_mx,
        "zone_fingerprint": planned.fingerprint,
        "required_digest": _required_digest(required),
        "records": [_record_plan(r) for r in planned.records],
        "changes": [_change(c) for c in planned.changes],
        "before": [_zone_record(r) for r in planned.before],
        "summary": _summary(planned),
        "created_at": clock.isoformat(now),
        "expires_at": clock.isoformat(expires),
        "ttl": int(expires.timestamp()) + 3600,  # DynamoDB's TTL sweep lags; expires_at is the rule
    }
    dns_setup.put_preview(table, item)
    return item


def _summary(planned: Plan) -> dict[str, int]:
    return {action: planned.count(action) for action in ("create", "update", "unchanged", "conflict")}


def preview_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "provider": item["provider"],
        "domain_id": item["domain_id"],
        "domain": item["domain"],
        "zone_id": item["zone_id"],
        "zone_name": item["zone_name"],
        "replace_mx": item["replace_mx"],
        "zone_fingerprint": item["zone_fingerprint"],
        "summary": item["summary"],
        "records": item["records"],
        "changes": [_change_view(c) for c in item["changes"]],
        "created_at": item["created_at"],
        "expires_at": item["expires_at"],
    }


# --- apply -------------------------------------------------------------------------------------------


def apply(table: Table, org_id: str, provider: Provider, preview_id: str) -> dict[str, Any]:
    """Make exactly the previewed changes; the result (kept on the preview: applying again answers it)."""
    item = dns_setup.get_preview(table, org_id, preview_id)
    if item is None or item["provider"] != provider:
        raise errors.not_found("Preview")
    if item.get("applied"):
        return dict(item["applied"])
    if item["expires_at"] <= clock.now_iso():
        raise errors.Gone("preview_expired", "The preview has expired.", hint="Preview again, then apply.")
    domain = domain_service.load_domain(table, org_id, item["domain_id"])
    connection, zones = _connected(table, domain, provider)
    required = domain_service.required_records(domain)
    if _required_digest(required) != item["required_digest"] or connection["zone_id"] != item["zone_id"]:
        raise errors.conflict(
            "The domain's records or its connection changed since the preview (a DKIM rotation, a new zone).",
            code="preview_outdated",
            hint="Preview again, then apply.",
        )
    changes = [_change_from(c) for c in item["changes"]]
    before = [_record_from(r) for r in item["before"]]
    names = dns_changes.required_names(required)
    with provider_errors(provider):
        current = dns_changes.relevant(zones.records(item["zone_id"], names), names)
        try:
            pending, made = dns_changes.progress(before, changes, current)
        except dns_changes.ZoneChanged as exc:
            raise errors.conflict(
                "The zone's records at the domain's names changed since the preview.",
                code="zone_changed",
                hint="Preview again, then apply.",
            ) from exc
        zones.apply(item["zone_id"], _with_current_ids(pending, current), current)
    check = domain_service.run_check(table, domain)
    result = {
        "preview_id": item["id"],
        "provider": provider,
        "domain_id": domain["id"],
        "zone_id": item["zone_id"],
        "status": "applied",
        "changes": [
            {**_change_view(_change(c)), "outcome": "already_made" if c in made else "made"} for c in changes
        ],
        "dns_check_id": check["id"],
        "domain_status": check["result"],
        "applied_at": clock.now_iso(),
    }
    recorded = dns_setup.mark_applied(table, org_id, item["id"], result)
    if recorded is None:  # a concurrent apply of the same preview recorded its result first
        return dict((dns_setup.get_preview(table, org_id, item["id"]) or {}).get("applied") or result)
    return result


def _with_current_ids(changes: list[Change], current: list[ZoneRecord]) -> list[Change]:
    """Changes acting on the zone's records as they are now (their ids: Cloudflare's record ids and
    Route 53's stored values are read again, not trusted from the preview)."""
    by_key = {r.key: r for r in current}
    return [
        Change(
            c.kind,
            c.type,
            c.name,
            c.content,
            c.priority,
            c.ttl,
            by_key.get(c.previous.key, c.previous),
            c.purpose,
        )
        if c.previous is not None
        else c
        for c in changes
    ]


# --- stored forms ------------------------------------------------------------------------------------


def _zone_record(record: ZoneRecord) -> dict[str, Any]:
    return {
        "type": record.type,
        "name": record.name,
        "content": record.content,
        "priority": record.priority,
        "ttl": record.ttl,
        "id": record.id,
    }


def _record_from(stored: dict[str, Any]) -> ZoneRecord:
    return ZoneRecord(
        stored["type"],
        stored["name"],
        stored["content"],
        None if stored.get("priority") is None else int(stored["priority"]),
        None if stored.get("ttl") is None else int(stored["ttl"]),
        stored.get("id"),
    )


def _change(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "type": change.type,
        "name": change.name,
        "content": change.content,
        "priority": change.priority,
        "ttl": change.ttl,
        "purpose": change.purpose,
        "previous": _zone_record(change.previous) if change.previous else None,
    }


def _change_from(stored: dict[str, Any]) -> Change:
    previous = stored.get("previous")
    return Change(
        stored["kind"],
        stored["type"],
        stored["name"],
        stored["content"],
        None if stored.get("priority") is None else int(stored["priority"]),
        int(stored["ttl"]),
        _record_from(previous) if previous else None,
        stored.get("purpose", ""),
    )


def _change_view(stored: dict[str, Any]) -> dict[str, Any]:
    previous = stored.get("previous")
    return {
        "action": stored["kind"],
        "type": stored["type"],
        "name": stored["name"],
        "content": stored["content"],
        "priority": None if stored.get("priority") is None else int(stored["priority"]),
        "ttl": int(stored["ttl"]),
        "purpose": stored["purpose"],
        "previous_content": previous["content"] if previous else None,
    }


def _record_plan(record: dns_changes.RecordPlan) -> dict[str, Any]:
    return {
        "purpose": record.purpose,
        "type": record.type,
        "name": record.name,
        "value": record.value,
        "priority": record.priority,
        "action": record.action,
        "current": list(record.current),
        "reason": record.reason,
    }

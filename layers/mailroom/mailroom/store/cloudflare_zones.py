"""Cloudflare zones and DNS records through the official SDK (API v4), with a tenant's token.

Like every AWS call in ``store``, the SDK's errors never leave this module: ``_translated`` turns
them into ``store.errors`` (a refused token is ``CredentialsRefused``, an outage or timeout
``ServiceUnavailable``, a zone the token cannot see or may not edit ``ObjectMissing``, an identical
record that appeared meanwhile ``ConditionFailed``).

Cloudflare has no atomic change batch: changes are made one by one, each a single request; apply's
guard (``dns_changes.progress``) makes a retry after a partial failure finish the job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from mailroom.domain.dns_changes import READ_TYPES, Change, ZoneRecord, normalize_name, parse_txt
from mailroom.domain.dns_providers import Provider, Zone
from mailroom.settings import get_settings
from mailroom.store.errors import (
    ConditionFailed,
    CredentialsRefused,
    InvalidRequest,
    ObjectMissing,
    ServiceUnavailable,
    StoreError,
    Throttled,
    Unreachable,
)

TIMEOUT_SECONDS = 10.0  # per request: an API Lambda has 29 s for the whole request
MAX_RETRIES = 1  # the SDK retries 429, 5xx and connection errors with backoff
MAX_ZONES = 1000  # zones listed at most
ZONES_PER_PAGE = 50  # Cloudflare's maximum for zones
RECORDS_PER_PAGE = 100
MAX_RECORDS = 500  # at one name: far more than any zone has
# Cloudflare's error codes for a record that conflicts with one already there (an identical record;
# an A/AAAA/CNAME at the name; a CNAME where other records are).
_EXISTS_CODES = frozenset({81053, 81054, 81057, 81058})
_NO_PERMISSION = 10000  # "Authentication error": the token is valid, not for this resource


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    import cloudflare

    where = {"service": "cloudflare", "operation": operation}
    try:
        yield
    except cloudflare.APITimeoutError as exc:
        raise ServiceUnavailable("Cloudflare did not answer in time", code="timeout", **where) from exc
    except cloudflare.APIConnectionError as exc:
        raise Unreachable("cannot reach the Cloudflare API", code="connection", **where) from exc
    except cloudflare.APIStatusError as exc:
        raise _status_error(exc, where) from exc
    except cloudflare.CloudflareError as exc:  # a response the SDK could not read
        raise ServiceUnavailable(
            f"unexpected answer from Cloudflare: {exc}", code="response", **where
        ) from exc


def _status_error(exc: Any, where: dict[str, str]) -> StoreError:
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    codes = {e.get("code") for e in errors}
    message = "; ".join(str(e.get("message")) for e in errors) or str(exc)
    code = ",".join(str(c) for c in sorted(codes, key=str)) or str(exc.status_code)
    status = int(exc.status_code)
    if status == 403 and codes == {_NO_PERMISSION} and where["operation"] != "verify_token":
        # A valid token without permission on this zone: for this token, there is no such zone.
        return ObjectMissing(message, code=code, **where)
    if status in (401, 403):
        return CredentialsRefused(message, code=code, **where)
    if status == 404:
        return ObjectMissing(message, code=code, **where)
    if status == 429:
        return Throttled(message, code=code, **where)
    if status >= 500:
        return ServiceUnavailable(message, code=code, **where)
    if codes & _EXISTS_CODES:
        return ConditionFailed(message, code=code, **where)
    return InvalidRequest(message, code=code, **where)


class CloudflareZones:
    provider: Provider = "cloudflare"

    def __init__(self, token: str) -> None:
        import cloudflare

        # base_url: Cloudflare's own unless the operator names another (a test server, a proxy).
        self._client = cloudflare.Cloudflare(
            api_token=token,
            base_url=get_settings().cloudflare_api_url,
            max_retries=MAX_RETRIES,
            timeout=TIMEOUT_SECONDS,
        )

    def verify(self) -> dict[str, Any]:
        """The token's id, status and expiry as Cloudflare sees them (CredentialsRefused if it is
        not a valid token at all)."""
        with _translated("verify_token"):
            result = self._client.user.tokens.verify()
        if result is None:
            raise ServiceUnavailable(
                "Cloudflare answered no token", service="cloudflare", operation="verify_token"
            )
        return {"id": result.id, "status": result.status, "expires_on": _iso(result.expires_on)}

    def zones(self, *, name: str | None = None) -> list[Zone]:
        kwargs: dict[str, Any] = {}
        if name is not None:
            kwargs["name"] = normalize_name(name)
        with _translated("list_zones"):
            zones = _pages(self._client.zones.list, ZONES_PER_PAGE, MAX_ZONES, **kwargs)
        return [Zone(id=z.id, name=normalize_name(z.name), status=str(z.status or "")) for z in zones]

    def zone(self, zone_id: str) -> Zone:
        with _translated("get_zone"):
            zone = self._client.zones.get(zone_id=zone_id)
        if zone is None:
            raise ObjectMissing("no such zone", service="cloudflare", operation="get_zone")
        return Zone(id=zone.id, name=normalize_name(zone.name), status=str(zone.status or ""))

    def records(self, zone_id: str, names: Sequence[str]) -> list[ZoneRecord]:
        found: list[ZoneRecord] = []
        with _translated("list_dns_records"):
            for name in sorted(set(names)):
                listed = _pages(
                    self._client.dns.records.list,
                    RECORDS_PER_PAGE,
                    MAX_RECORDS,
                    zone_id=zone_id,
                    name={"exact": name},
                )
                found.extend(
                    _record(r) for r in listed if r.type in READ_TYPES and normalize_name(r.name) == name
                )
        return found

    def apply(self, zone_id: str, changes: Sequence[Change], current: Sequence[ZoneRecord]) -> None:
        records = self._client.dns.records
        for change in changes:
            fields: dict[str, Any] = {"name": change.name, "type": change.type, "ttl": change.ttl}
            if change.type == "MX":
                fields["priority"] = change.priority
            if change.kind == "create":
                with _translated("create_dns_record"):
                    records.create(
                        zone_id=zone_id,
                        content=change.content,
                        comment=f"Mailroom: {change.purpose}",
                        **fields,
                    )
                continue
            record_id = change.previous.id if change.previous else None
            if not record_id:
                raise InvalidRequest(
                    "the change names no record", service="cloudflare", operation=change.kind
                )
            if change.kind == "update":
                with _translated("edit_dns_record"):
                    records.edit(record_id, zone_id=zone_id, content=change.content, **fields)
            else:
                with _translated("delete_dns_record"):
                    records.delete(record_id, zone_id=zone_id)


def _pages(list_call: Any, per_page: int, limit: int, **kwargs: Any) -> list[Any]:
    """Every item of a paginated list, page by page while pages come back full (the SDK's own
    iteration asks for one more, empty, page every time)."""
    items: list[Any] = []
    page_number = 1
    while len(items) < limit:
        page = list_call(page=page_number, per_page=per_page, **kwargs)
        result = list(page.result or [])
        items.extend(result)
        if len(result) < per_page:
            break
        page_number += 1
    return items[:limit]


def _record(record: Any) -> ZoneRecord:
    name = normalize_name(record.name)
    content = str(record.content or "")
    if record.type == "MX":
        return ZoneRecord(
            "MX", name, normalize_name(content), int(record.priority or 0), _ttl(record), record.id
        )
    if record.type == "TXT":
        return ZoneRecord("TXT", name, parse_txt(content), None, _ttl(record), record.id)
    return ZoneRecord(record.type, name, normalize_name(content), None, _ttl(record), record.id)


def _ttl(record: Any) -> int | None:
    ttl = getattr(record, "ttl", None)
    return int(ttl) if isinstance(ttl, int | float) and ttl > 0 else None  # 1 is Cloudflare's "automatic"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    from mailroom import clock

    return clock.isoformat(value) if hasattr(value, "tzinfo") else str(value)

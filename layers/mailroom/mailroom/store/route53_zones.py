"""Route 53 hosted zones, in the stack's own account or through a role the tenant gives.

A cross-account role is assumed with the organization's id as the external id, so a role that
trusts Mailroom for one organization cannot be used by another (the confused-deputy problem). The
temporary credentials live as long as the request.

Changes go out as one change batch, atomic in Route 53: a record set that changes is deleted with
exactly the values it had (Route 53 refuses the DELETE otherwise) and created with its new values,
which makes the batch a compare-and-swap: a zone edited meanwhile refuses it (``ConditionFailed``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mailroom.domain.dns_changes import (
    NEW_RECORD_TTL,
    READ_TYPES,
    Change,
    ZoneRecord,
    after,
    normalize_name,
    parse_txt,
    txt_rdata,
)
from mailroom.domain.dns_providers import Provider, Zone
from mailroom.store import aws

SESSION_SECONDS = 900  # the shortest an assumed role's session can be


def _zone_id(raw: str) -> str:
    return raw.rsplit("/", 1)[-1]


class Route53Zones:
    provider: Provider = "route53"

    def __init__(self, *, role_arn: str | None = None, external_id: str | None = None) -> None:
        self._role_arn = role_arn
        self._external_id = external_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            if self._role_arn is None:
                self._client = aws.client("route53")
            else:
                kwargs: dict[str, Any] = {
                    "RoleArn": self._role_arn,
                    "RoleSessionName": "mailroom-dns",
                    "DurationSeconds": SESSION_SECONDS,
                }
                if self._external_id:
                    kwargs["ExternalId"] = self._external_id
                credentials = aws.client("sts").assume_role(**kwargs)["Credentials"]
                self._client = aws.client_with_credentials("route53", credentials)
        return self._client

    def zones(self, *, name: str | None = None) -> list[Zone]:
        found = []
        for page in self.client.get_paginator("list_hosted_zones").paginate():
            for zone in page.get("HostedZones", []):
                view = _zone(zone)
                if name is None or view.name == normalize_name(name):
                    found.append(view)
        return found

    def zone(self, zone_id: str) -> Zone:
        return _zone(self.client.get_hosted_zone(Id=zone_id)["HostedZone"])

    def records(self, zone_id: str, names: Sequence[str]) -> list[ZoneRecord]:
        """Each name's record sets from where the name starts in the zone's order (a page or two
        per name, however large the zone)."""
        found: list[ZoneRecord] = []
        for name in sorted(set(names)):
            start: dict[str, str] = {"StartRecordName": name}
            while True:
                page = self.client.list_resource_record_sets(HostedZoneId=zone_id, MaxItems="100", **start)
                sets = page.get("ResourceRecordSets", [])
                for record_set in sets:
                    if normalize_name(record_set["Name"]) == name and record_set["Type"] in READ_TYPES:
                        found.extend(_records(record_set))
                past = any(normalize_name(s["Name"]) != name for s in sets)
                if past or not page.get("IsTruncated"):
                    break
                start = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
        return found

    def apply(self, zone_id: str, changes: Sequence[Change], current: Sequence[ZoneRecord]) -> None:
        by_set: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for change in changes:
            by_set[(change.name, change.type)].append(change)
        batch: list[dict[str, Any]] = []
        for (name, type_), set_changes in sorted(by_set.items()):
            old = [r for r in current if r.name == name and r.type == type_]
            ttl = next((r.ttl for r in old if r.ttl), None) or NEW_RECORD_TTL
            new = sorted(after(old, set_changes).elements())
            if old:
                batch.append({"Action": "DELETE", "ResourceRecordSet": _record_set(name, type_, ttl, old)})
            if new:
                records = [ZoneRecord(t, n, c, p) for t, n, c, p in new]
                batch.append(
                    {"Action": "CREATE", "ResourceRecordSet": _record_set(name, type_, ttl, records)}
                )
        if batch:
            self.client.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Comment": "Mailroom: mail DNS records", "Changes": batch}
            )


def _zone(zone: dict[str, Any]) -> Zone:
    private = bool(zone.get("Config", {}).get("PrivateZone"))
    return Zone(
        id=_zone_id(zone["Id"]),
        name=normalize_name(zone["Name"]),
        status="private" if private else "active",
        private=private,
        record_count=zone.get("ResourceRecordSetCount"),
    )


def _records(record_set: dict[str, Any]) -> list[ZoneRecord]:
    """One ZoneRecord per value; its ``id`` is the value exactly as Route 53 stores it."""
    name, type_, ttl = normalize_name(record_set["Name"]), record_set["Type"], record_set.get("TTL")
    found = []
    for value in (r["Value"] for r in record_set.get("ResourceRecords", [])):
        if type_ == "MX":
            priority, _, host = value.strip().partition(" ")
            found.append(ZoneRecord("MX", name, normalize_name(host), int(priority), ttl, value))
        elif type_ == "TXT":
            found.append(ZoneRecord("TXT", name, parse_txt(value), None, ttl, value))
        else:
            found.append(ZoneRecord(type_, name, normalize_name(value), None, ttl, value))
    return found


def _value(record: ZoneRecord) -> str:
    if record.id is not None:  # read from the zone: exactly as stored (a DELETE must match it)
        return record.id
    if record.type == "MX":
        return f"{record.priority} {record.content}."
    if record.type == "TXT":
        return txt_rdata(record.content)
    return record.content


def _record_set(name: str, type_: str, ttl: int, records: Sequence[ZoneRecord]) -> dict[str, Any]:
    return {
        "Name": f"{name}.",
        "Type": type_,
        "TTL": ttl,
        "ResourceRecords": [{"Value": _value(r)} for r in records],
    }

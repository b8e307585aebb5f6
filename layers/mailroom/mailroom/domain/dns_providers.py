"""What Mailroom needs from a DNS host, whichever it is (Route 53, Cloudflare).

The implementations live in ``store/`` (they do I/O, and translate their SDK's errors into
``store.errors`` like every AWS call); the services only see this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mailroom.domain.dns_changes import Change, ZoneRecord

Provider = Literal["cloudflare", "route53"]


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name: str  # lower case, no trailing dot
    status: str  # Cloudflare's zone status; "active" for a public Route 53 zone
    private: bool = False
    record_count: int | None = None


def zone_covers(zone_name: str, domain: str) -> bool:
    """Whether ``domain``'s records belong in the zone: its apex or a name under it."""
    zone_name, domain = zone_name.rstrip(".").lower(), domain.rstrip(".").lower()
    return domain == zone_name or domain.endswith("." + zone_name)


class DnsZones(Protocol):
    """One account's zones at a DNS host, reached with the credentials it was built with."""

    provider: Provider

    def zones(self, *, name: str | None = None) -> list[Zone]:
        """The zones the credentials can see (``name``: only that zone)."""
        ...

    def zone(self, zone_id: str) -> Zone:
        """One zone; ``store.errors.ObjectMissing`` when the credentials cannot see it."""
        ...

    def records(self, zone_id: str, names: Sequence[str]) -> list[ZoneRecord]:
        """The zone's MX, TXT and CNAME records at ``names``."""
        ...

    def apply(self, zone_id: str, changes: Sequence[Change], current: Sequence[ZoneRecord]) -> None:
        """Make ``changes`` (``current``: the zone's records at their names right now).
        ``store.errors.ConditionFailed`` when the zone no longer matches ``current``."""
        ...

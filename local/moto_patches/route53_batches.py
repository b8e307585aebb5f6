"""Route 53 change batches checked as Route 53 checks them.

Route 53 applies a batch all or nothing, each change against the zone as the batch's earlier
changes leave it: a DELETE must give the record set exactly as it is (its TTL and every value), a
CREATE must name one that does not exist; otherwise the batch is refused with
``InvalidChangeBatch`` and nothing changes. moto checks a DELETE against any values the set ever
had and a CREATE only against an identical earlier request, so a batch written against a zone
that changed meanwhile overwrote the change. DNS set-up's apply is a compare-and-swap built on this
check (store/route53_zones.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_INSTALLED = "_mailroom_checked_batches"


def _name(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _as_is(record_set: Any) -> tuple[str, list[str], str]:
    """A record set as the zone holds it (TTL, values, alias), for comparing with a DELETE."""
    return (str(record_set.ttl), sorted(record_set.records or []), repr(record_set.alias_target))


def _as_given(record_set: dict[str, Any]) -> tuple[str, list[str], str]:
    values = [r["Value"] if isinstance(r, dict) else r for r in record_set.get("ResourceRecords") or []]
    return (str(record_set.get("TTL")), sorted(values), repr(record_set.get("AliasTarget")))


def refusal(zone: Any, changes: list[dict[str, Any]]) -> str | None:
    """Why Route 53 would refuse ``changes`` to ``zone`` (None when it would apply them)."""
    state = {(_name(r.name), r.type, r.set_identifier): _as_is(r) for r in zone.rrsets}
    refused = []
    for change in changes:
        record_set = change["ResourceRecordSet"]
        key = (_name(record_set["Name"]), record_set.get("Type"), record_set.get("SetIdentifier"))
        shown = f"[name='{key[0]}', type='{key[1]}']"
        action = change["Action"]
        if action == "DELETE":
            if key not in state:
                refused.append(f"Tried to delete resource record set {shown} but it was not found")
            elif state[key] != _as_given(record_set):
                refused.append(
                    f"Tried to delete resource record set {shown} but the values provided do not match "
                    "the current values"
                )
            state.pop(key, None)
        elif action == "CREATE":
            if key in state:
                refused.append(f"Tried to create resource record set {shown} but it already exists")
            state[key] = _as_given(record_set)
        else:
            state[key] = _as_given(record_set)
    return ", ".join(refused) if refused else None


def _checked(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def change_resource_record_sets(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        from moto.route53.exceptions import Route53ClientError

        why = refusal(self.get_hosted_zone(zoneid), change_list)
        if why is not None:
            raise Route53ClientError("InvalidChangeBatch", f"[{why}]")
        original(self, zoneid, change_list)

    setattr(change_resource_record_sets, _INSTALLED, True)
    return change_resource_record_sets


def install() -> None:
    from moto.route53.models import Route53Backend

    if not getattr(Route53Backend.change_resource_record_sets, _INSTALLED, False):
        Route53Backend.change_resource_record_sets = _checked(  # type: ignore[method-assign]
            Route53Backend.change_resource_record_sets
        )

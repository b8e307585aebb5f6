"""Route sets written the way the automation API writes them (the CONTRACT of WAVE5.md: one item per
target, ``routes`` as JSON text ordered by position then id, enabled routes only, ``data_keys`` the
documents the conditions and ``store_data`` actions read), for tests of the inbound stage that do
not go through the API. Once the automation API is merged, tests can build routes through it."""

from __future__ import annotations

import itertools
import json
from typing import Any, Protocol

from mailroom.store import keys


class Writer(Protocol):
    """``mailroom.store.table.Table``, or anything writing items the same way (an e2e test writes
    over the local stack's endpoint)."""

    def put(self, item: dict[str, Any]) -> None: ...

    def delete(self, pk: str, sk: str) -> Any: ...


_ids = itertools.count(1)


def action(action_type: str, name: str | None = None, **parameters: Any) -> dict[str, Any]:
    number = next(_ids)
    return {
        "id": f"act_{number:026d}",
        "name": name or f"{action_type} {number}",
        "action_type": action_type,
        "parameters": parameters,
    }


def rule(*conditions: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"id": f"rul_{next(_ids):026d}", "match": match, "conditions": list(conditions)}


def route(
    *actions: dict[str, Any],
    rule: dict[str, Any] | None = None,
    position: int = 0,
    stop: bool = False,
    name: str | None = None,
    route_id: str | None = None,
) -> dict[str, Any]:
    number = next(_ids)
    return {
        "id": route_id or f"rte_{number:026d}",
        "name": name or f"route {number}",
        "position": position,
        "stop": stop,
        "rule": rule,
        "actions": list(actions),
    }


def data_keys(routes: list[dict[str, Any]]) -> list[str]:
    found: dict[str, None] = {}
    for entry in routes:
        for condition in (entry["rule"] or {}).get("conditions", []):
            if condition.get("field") == "data" or condition.get("op") in ("in_data", "not_in_data"):
                found[condition["key"]] = None
        for act in entry["actions"]:
            if act["action_type"] == "store_data":
                found[act["parameters"]["key"]] = None
    return list(found)


def put_route_set(
    table: Writer,
    org_id: str,
    routes: list[dict[str, Any]],
    *,
    mailbox_id: str | None = None,
    domain_id: str | None = None,
    built_version: int = 1,
) -> dict[str, Any]:
    """Write (or, with no routes, delete) the route set of a mailbox or a domain."""
    pk = keys.automation_pk(org_id)
    sk = keys.mailbox_route_set_sk(mailbox_id) if mailbox_id else keys.domain_route_set_sk(str(domain_id))
    if not routes:
        table.delete(pk, sk)
        return {}
    ordered = sorted(routes, key=lambda r: (r["position"], r["id"]))
    item = {
        "PK": pk,
        "SK": sk,
        "type": "route_set",
        "built_version": built_version,
        "routes": json.dumps(ordered, separators=(",", ":")),
        "data_keys": data_keys(ordered),
    }
    table.put(item)
    return item

"""WebSocket connections: who each one is (the token's organization, type and mailbox), what it
subscribes to, and the management API that pushes frames to it.

A connection item lives under its organization (``ORG#<org>#WS`` / connection id), so the fan-out
finds an organization's connections with one Query; a small route item (``WSCONN#<id>``, ids only)
says which organization a connection belongs to, since API Gateway names only the connection on
every frame after ``$connect``. Both are written in one transaction and expire by TTL a little
after API Gateway's two-hour connection limit, in case ``$disconnect`` never ran.
"""

from __future__ import annotations

import time
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws, keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Table, deserialize, serialize, values

# API Gateway closes every connection after 2 hours; the items outlive it by a margin.
CONNECTION_TTL_SECONDS = 2 * 3600 + 600


class NotConfigured(RuntimeError):
    pass


def create(table: Table, connection: Item) -> None:
    """The connection and its route item, together (``connection``: id, org_id and what it is)."""
    ttl = int(time.time()) + CONNECTION_TTL_SECONDS
    item = {
        **connection,
        "PK": keys.ws_connections_pk(connection["org_id"]),
        "SK": connection["id"],
        "type": "ws_connection",
        "subscriptions": [],
        "ttl": ttl,
    }
    route = {
        "PK": keys.ws_route_pk(connection["id"]),
        "SK": "#CONN",
        "type": "ws_route",
        "org_id": connection["org_id"],
        "ttl": ttl,
    }
    table.transact([{"Put": {"Item": serialize(item)}}, {"Put": {"Item": serialize(route)}}])


def find(table: Table, connection_id: str) -> Item | None:
    """The connection, through its route item (two consistent reads); None once it is gone."""
    route = table.get(keys.ws_route_pk(connection_id), "#CONN")
    if route is None:
        return None
    return table.get(keys.ws_connections_pk(route["org_id"]), connection_id)


def set_subscriptions(table: Table, connection: Item, subscriptions: list[dict[str, Any]]) -> bool:
    """Replace the connection's subscriptions if nothing changed them since it was read (two frames
    of one connection may be handled at once); False when they were changed, or it is gone."""
    previous = connection.get("subscriptions") or []
    try:
        table.update(
            keys.ws_connections_pk(connection["org_id"]),
            connection["id"],
            "SET subscriptions = :new",
            condition="attribute_exists(PK) AND subscriptions = :old",
            expression_values=values(new=subscriptions, old=previous),
            return_values="NONE",
        )
    except ConditionFailed:
        return False
    return True


def delete(table: Table, org_id: str, connection_id: str) -> None:
    table.transact(
        [
            {"Delete": {"Key": serialize({"PK": keys.ws_connections_pk(org_id), "SK": connection_id})}},
            {"Delete": {"Key": serialize({"PK": keys.ws_route_pk(connection_id), "SK": "#CONN"})}},
        ]
    )


def of_organization(table: Table, org_id: str, *, limit: int | None = None) -> list[Item]:
    """The organization's live connections (expired ones TTL has not removed yet are skipped), up to
    ``limit``; one Query a megabyte of items."""
    now = int(time.time())
    found: list[Item] = []
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table.name,
            "KeyConditionExpression": "PK = :pk",
            "FilterExpression": "#ttl > :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": values(pk=keys.ws_connections_pk(org_id), now=now),
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = table.client.query(**kwargs)
        found.extend(deserialize(i) for i in response.get("Items", []))
        start = response.get("LastEvaluatedKey")
        if not start or (limit is not None and len(found) >= limit):
            return found if limit is None else found[:limit]


# ----------------------------------------------------------------------------- management API


def _management() -> Any:
    endpoint = get_settings().websocket_endpoint
    if not endpoint:
        raise NotConfigured("MAILROOM_WEBSOCKET_ENDPOINT is not set")
    return aws.client("apigatewaymanagementapi", endpoint_url=endpoint)


def post(connection_id: str, data: bytes) -> None:
    """Send one frame; ``store.errors.ObjectMissing`` when the connection is gone (410)."""
    _management().post_to_connection(ConnectionId=connection_id, Data=data)

"""The WebSocket API's use cases: authenticate a connection, keep its subscriptions, answer frames.

``$connect`` takes the same tokens as the HTTP API: an ops token or ``inai_`` API key needs
``webhooks:read`` (its organization's events), a message token ``messages:read`` (its mailbox's
mail events only). The token comes in the ``token`` query parameter or as a
``Sec-WebSocket-Protocol`` entry next to ``mailroom`` (docs/events.md). Frames after it are JSON:
``subscribe``, ``unsubscribe`` and ``ping``; each gets one answer frame (``subscribed``,
``unsubscribed``, ``pong``, or ``error`` with a code, as the HTTP API's error codes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mailroom import auth, clock, ids
from mailroom.domain import realtime
from mailroom.domain import webhooks as rules
from mailroom.domain.scopes import OPS_SCOPES
from mailroom.domain.tokens import TokenType
from mailroom.observability import logger
from mailroom.services.webhooks import missing_mailboxes
from mailroom.settings import get_settings
from mailroom.store import ws_connections
from mailroom.store.table import Item, Table

SUBPROTOCOL = "mailroom"
MAX_FRAME_BYTES = 32 * 1024  # API Gateway's own frame limit is 32 KB


class Refused(Exception):
    """``$connect`` refused: ``status`` is the handshake's HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Handshake:
    token: str | None
    subprotocol: str | None  # what the server answers in Sec-WebSocket-Protocol, if the client offered


def handshake(query: dict[str, str] | None, headers: dict[str, str] | None) -> Handshake:
    """The token of a ``$connect``: ``Sec-WebSocket-Protocol: mailroom, <token>`` (browsers can set
    no other header) or ``?token=<token>``."""
    offered = [p.strip() for p in (headers or {}).get("sec-websocket-protocol", "").split(",") if p.strip()]
    if SUBPROTOCOL in offered:
        others = [p for p in offered if p != SUBPROTOCOL]
        return Handshake(token=others[0] if others else None, subprotocol=SUBPROTOCOL)
    return Handshake(token=(query or {}).get("token") or None, subprotocol=None)


def connect(table: Table, connection_id: str, token: str | None) -> Item:
    """Authenticate and record the connection; Refused (401, 403, 429) otherwise."""
    claims = auth.classify(f"Bearer {token}" if token else None, table)
    if claims.get("denied"):
        raise Refused(401, "unauthenticated", "Invalid or expired token.")
    token_type = TokenType(claims["token_type"])
    scopes = OPS_SCOPES if token_type is TokenType.API_KEY else frozenset(str(claims["scopes"]).split())
    mailbox_id = str(claims.get("mailbox_id") or "") or None
    needed = "messages:read" if token_type is TokenType.MESSAGE else "webhooks:read"
    if needed not in scopes:
        raise Refused(403, "insufficient_scope", f"The token lacks the scope {needed}.")
    org_id = str(claims["org_id"])
    limit = get_settings().websocket_max_connections
    if len(ws_connections.of_organization(table, org_id, limit=limit)) >= limit:
        raise Refused(429, "limit_reached", f"The organization has {limit} open WebSocket connections.")
    connection: Item = {
        "id": connection_id,
        "org_id": org_id,
        "token_id": claims["token_id"],
        "token_type": token_type.value,
        "mailbox_id": mailbox_id,
        "connected_at": clock.now_iso(),
    }
    ws_connections.create(table, connection)
    return connection


def disconnect(table: Table, connection_id: str) -> None:
    connection = ws_connections.find(table, connection_id)
    if connection is not None:
        ws_connections.delete(table, connection["org_id"], connection_id)


# ----------------------------------------------------------------------------- frames


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


InboxId = Annotated[str, Field(min_length=1, max_length=64)]


class Subscribe(_Frame):
    type: Literal["subscribe"]
    event_types: list[str] = Field(default_factory=list, max_length=len(rules.EVENT_TYPES))
    inbox_ids: list[InboxId] = Field(default_factory=list, max_length=realtime.MAX_INBOXES)


class Unsubscribe(_Frame):
    type: Literal["unsubscribe"]
    subscription_id: str | None = Field(default=None, max_length=64)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def answer(table: Table, connection_id: str, body: str | None) -> dict[str, Any]:
    """The answer frame to a client frame (never raises for what the client sent)."""
    if body is None or len(body.encode()) > MAX_FRAME_BYTES:
        return _error("validation_error", "a frame is a JSON object of at most 32 KB")
    try:
        frame = json.loads(body)
    except ValueError:
        return _error("validation_error", "a frame is a JSON object")
    kind = frame.get("type") if isinstance(frame, dict) else None
    if kind == "ping":  # keeps an idle connection open (API Gateway closes it after 10 minutes)
        return {"type": "pong"}
    if kind not in ("subscribe", "unsubscribe"):
        return _error("validation_error", 'type must be "subscribe", "unsubscribe" or "ping"')
    try:
        parsed: Subscribe | Unsubscribe = (
            Subscribe.model_validate(frame) if kind == "subscribe" else Unsubscribe.model_validate(frame)
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _error("validation_error", f"{where}: {first['msg']}")
    connection = ws_connections.find(table, connection_id)
    if connection is None:
        return _error("unauthenticated", "the connection is not known (reconnect)")
    for _ in range(3):  # two frames of one connection at once: the later one reads again
        result = (
            _subscribe(table, connection, parsed)
            if isinstance(parsed, Subscribe)
            else _unsubscribe(table, connection, parsed)
        )
        if result is not None:
            return result
        connection = ws_connections.find(table, connection_id)
        if connection is None:
            return _error("unauthenticated", "the connection is not known (reconnect)")
    return _error("conflict", "the subscriptions changed meanwhile; send the frame again")


def _subscribe(table: Table, connection: Item, frame: Subscribe) -> dict[str, Any] | None:
    bound = connection.get("mailbox_id")
    allowed = realtime.allowed_types(bound)
    try:
        event_types = rules.known_event_types(frame.event_types or allowed, allowed)
        inbox_ids = rules.mailbox_filter(frame.inbox_ids)
    except ValueError as exc:
        return _error("validation_error", str(exc))
    foreign = realtime.foreign_inboxes(bound, inbox_ids)
    if foreign:
        return _error("forbidden", f"a message token sees only its own mailbox, not {', '.join(foreign)}")
    if bound and not inbox_ids:
        inbox_ids = [bound]
    missing = missing_mailboxes(table, connection["org_id"], inbox_ids) if inbox_ids else []
    if missing:
        return _error("unknown_mailbox", f"not mailboxes of this organization: {', '.join(missing)}")
    subscriptions = list(connection.get("subscriptions") or [])
    if len(subscriptions) >= realtime.MAX_SUBSCRIPTIONS:
        return _error("limit_reached", f"a connection has at most {realtime.MAX_SUBSCRIPTIONS} subscriptions")
    subscription = {"id": ids.new_id("sub"), "event_types": event_types, "inbox_ids": inbox_ids}
    if not ws_connections.set_subscriptions(table, connection, [*subscriptions, subscription]):
        return None
    return {
        "type": "subscribed",
        "subscription_id": subscription["id"],
        "event_types": event_types,
        "inbox_ids": inbox_ids,
    }


def _unsubscribe(table: Table, connection: Item, frame: Unsubscribe) -> dict[str, Any] | None:
    subscriptions = list(connection.get("subscriptions") or [])
    if frame.subscription_id is None:
        removed, kept = subscriptions, []
    else:
        removed = [s for s in subscriptions if s["id"] == frame.subscription_id]
        kept = [s for s in subscriptions if s["id"] != frame.subscription_id]
        if not removed:
            return _error("not_found", f"no subscription {frame.subscription_id} on this connection")
    if not ws_connections.set_subscriptions(table, connection, kept):
        return None
    logger().info("unsubscribed", extra={"connection_id": connection["id"], "removed": len(removed)})
    return {"type": "unsubscribed", "subscription_ids": [s["id"] for s in removed]}

"""Fan-out to WebSocket connections: each new event, pushed to every connection of its
organization that subscribes to it, through the API Gateway management API.

It runs in the same stream consumer as the webhook fan-out, after it, for the events whose webhook
deliveries were made (a record the stream will retry is pushed on that retry instead). A frame is
the webhook payload itself (same ``event_id``), so a client dedupes by it. Each connection gets its
frames in event order; connections are served concurrently. A connection API Gateway says is gone
(410) is deleted; other failures are logged and not retried (a client that reconnects reads what
it missed from ``GET /api/v1/events``).
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from mailroom.domain import realtime
from mailroom.domain import webhooks as rules
from mailroom.observability import logger
from mailroom.store import ws_connections
from mailroom.store.errors import ObjectMissing, StoreError
from mailroom.store.table import Item, Table


@dataclass
class PushResult:
    frames: int = 0
    gone: int = 0
    failed: int = 0
    by_connection: Counter[str] = field(default_factory=Counter)


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="ws-push")


def frames_for(
    events: list[Item], connections_of: Callable[[str], list[Item]]
) -> dict[tuple[str, str], list[bytes]]:
    """(organization, connection) → the frames it gets, in event order."""
    frames: dict[tuple[str, str], list[bytes]] = {}
    for event in events:
        data = event.get("data") or {}
        targets = [
            c for c in connections_of(event["org_id"]) if realtime.matches(c, event["event_type"], data)
        ]
        if not targets:
            continue
        body = rules.encode_payload(rules.payload(event))
        for connection in targets:
            frames.setdefault((event["org_id"], connection["id"]), []).append(body)
    return frames


def push(table: Table, events: list[Item], *, connections_of: Callable[[str], list[Item]]) -> PushResult:
    result = PushResult()
    work = frames_for(events, connections_of)
    if not work:
        return result

    def send(target: tuple[str, str], frames: list[bytes]) -> tuple[int, bool, bool]:
        org_id, connection_id = target
        sent = 0
        for frame in frames:
            try:
                ws_connections.post(connection_id, frame)
            except ObjectMissing:
                try:
                    ws_connections.delete(table, org_id, connection_id)
                except StoreError:
                    logger().warning("gone connection not deleted", extra={"connection_id": connection_id})
                return sent, True, False
            except StoreError:
                logger().warning("frame not pushed", extra={"connection_id": connection_id}, exc_info=True)
                return sent, False, True
            sent += 1
        return sent, False, False

    futures = {_pool().submit(send, target, frames): target for target, frames in work.items()}
    for future in concurrent.futures.as_completed(futures):
        sent, gone, failed = future.result()
        result.frames += sent
        result.gone += gone
        result.failed += failed
        result.by_connection[futures[future][1]] += sent
    return result

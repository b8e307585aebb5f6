"""Two requests racing for the last unit of a limit, made deterministic.

``concurrently(calls, gate)`` runs each call (an API request) in its own thread. The first
DynamoDB write of each that ``gate`` picks (a transaction, or a single UpdateItem) waits until all
of them have reached that write, so every request has done all of its reads (and passed every
check made on what it read) before any of them writes. Then the writes run one at a time, as
DynamoDB serializes conflicting writes. Only a condition evaluated by DynamoDB at write time can
then keep the invariant: a read-then-write check lets every request through.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from unittest import mock

from mailroom.store.table import Table

T = TypeVar("T")
Gate = Callable[[str], bool]


def writes_item_of_type(kind: str) -> Gate:
    """A transaction that puts an item of ``type`` ``kind`` (a domain, a mailbox, an alias...)."""
    marker = json.dumps({"type": {"S": kind}})[1:-1]
    return lambda described: described.startswith("transact:") and marker in described


def updates_key(sk: str) -> Gate:
    """A single UpdateItem of the item with sort key ``sk``."""
    return lambda described: described.startswith("update:") and f"sk={sk};" in described


def either(*gates: Gate) -> Gate:
    return lambda described: any(gate(described) for gate in gates)


@contextmanager
def _held_writes(parties: int, gate: Gate) -> Iterator[list[str]]:
    barrier = threading.Barrier(parties, timeout=60)
    one_at_a_time = threading.Lock()
    held: list[str] = []
    count_lock = threading.Lock()
    transact, update = Table.transact, Table.update

    def hold(described: str) -> bool:
        if not gate(described):
            return False
        with count_lock:
            if len(held) >= parties:
                return False  # the race is over: later writes (audit records, ...) pass freely
            held.append(described)
        barrier.wait()
        return True

    def gated_transact(self: Table, operations: Sequence[dict[str, Any]]) -> None:
        if hold("transact:" + json.dumps(list(operations), default=str)):
            with one_at_a_time:
                return transact(self, operations)
        return transact(self, operations)

    def gated_update(self: Table, pk: str, sk: str, *args: Any, **kwargs: Any) -> Any:
        if hold(f"update:pk={pk};sk={sk};"):
            with one_at_a_time:
                return update(self, pk, sk, *args, **kwargs)
        return update(self, pk, sk, *args, **kwargs)

    with (
        mock.patch.object(Table, "transact", gated_transact),
        mock.patch.object(Table, "update", gated_update),
    ):
        yield held


def concurrently(calls: Sequence[Callable[[], T]], gate: Gate) -> list[T]:
    """Run ``calls`` in parallel with their first ``gate``-picked writes held until all are ready."""

    def in_thread(call: Callable[[], T]) -> T:
        # Each thread runs its own request; Mangum wants an event loop in the thread that calls it.
        asyncio.set_event_loop(asyncio.new_event_loop())
        return call()

    with _held_writes(len(calls), gate) as held, ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(in_thread, calls))
    assert len(held) == len(calls), f"only {len(held)} of {len(calls)} requests reached the gated write"
    return results

"""Requests racing for the last unit of a limit, made deterministic.

``concurrently(calls, gate)`` runs each call (an API request) in its own thread. The first
DynamoDB write of each that ``gate`` picks (a transaction, or a single UpdateItem) waits until all
of them have reached that write, so every request has done all of its reads (and passed every
check made on what it read) before any of them writes. Then the writes run one at a time, in the
order of ``calls``, as DynamoDB serializes conflicting writes. Only a condition that DynamoDB
evaluates at write time can then keep the invariant: a read-then-write check lets them all through.
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
WAIT_SECONDS = 30


def writes_item_of_type(kind: str) -> Gate:
    """A transaction that puts an item of ``type`` ``kind`` (a domain, a mailbox, an alias...)."""
    marker = json.dumps({"type": {"S": kind}})[1:-1]
    return lambda described: described.startswith("transact:") and marker in described


def updates_key(sk: str) -> Gate:
    """A single UpdateItem of the item with sort key ``sk``."""
    return lambda described: described.startswith("update:") and described.endswith(f";sk={sk}")


def either(*gates: Gate) -> Gate:
    return lambda described: any(gate(described) for gate in gates)


class _Race:
    def __init__(self, parties: int, gate: Gate) -> None:
        self.gate = gate
        self.parties = parties
        self.barrier = threading.Barrier(parties, timeout=WAIT_SECONDS)
        self.turn = threading.Condition()
        self.next_up = 0
        self.held: list[int] = []
        self.party = threading.local()

    def run(self, described: str, write: Callable[[], Any]) -> Any:
        index: int | None = getattr(self.party, "index", None)
        with self.turn:
            # Only each party's first gated write races; later ones (audit records...) pass freely.
            holding = index is not None and index not in self.held and self.gate(described)
            if holding:
                self.held.append(index)  # type: ignore[arg-type]
        if not holding:
            return write()
        self.barrier.wait()
        with self.turn:
            if not self.turn.wait_for(lambda: self.next_up == index, timeout=WAIT_SECONDS):
                raise TimeoutError(f"write {index} never got its turn")
        try:
            return write()
        finally:
            with self.turn:
                self.next_up += 1
                self.turn.notify_all()


@contextmanager
def _racing(race: _Race) -> Iterator[None]:
    transact, update = Table.transact, Table.update

    def gated_transact(self: Table, operations: Sequence[dict[str, Any]]) -> None:
        described = "transact:" + json.dumps(list(operations), default=str)
        return race.run(described, lambda: transact(self, operations))  # type: ignore[no-any-return]

    def gated_update(self: Table, pk: str, sk: str, *args: Any, **kwargs: Any) -> Any:
        return race.run(f"update:pk={pk};sk={sk}", lambda: update(self, pk, sk, *args, **kwargs))

    with (
        mock.patch.object(Table, "transact", gated_transact),
        mock.patch.object(Table, "update", gated_update),
    ):
        yield


def concurrently(calls: Sequence[Callable[[], T]], gate: Gate) -> list[T]:
    """Run ``calls`` in parallel; their first ``gate``-picked writes wait for each other, then run
    in the order of ``calls``."""
    race = _Race(len(calls), gate)

    def in_thread(index: int) -> T:
        race.party.index = index
        # Each thread runs its own request; Mangum wants an event loop in the thread that calls it.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return calls[index]()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    with _racing(race), ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(in_thread, range(len(calls))))
    assert sorted(race.held) == list(range(len(calls))), f"only {race.held} reached the gated write"
    return results

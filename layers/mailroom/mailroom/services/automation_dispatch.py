"""From new processing-log entries to queue messages: one per asynchronous action still pending
(docs/automation-execution.md). The table's stream brings the entries (its filter passes only
INSERTs of ``rule_log`` items whose ``automation_pending`` is not 0); this turns a batch of them
into messages, sent ten to a request. Sending twice is harmless (the worker's claim runs each
action once), so a stream batch retried from a failed record sends what followed it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailroom.domain.automation_runs import PendingAction, pending_actions
from mailroom.store import action_runs, automation_queue
from mailroom.store.table import Item


@dataclass(slots=True)
class Dispatched:
    """What a batch did: messages sent, and the entries (by position) some of whose messages were not."""

    sent: int = 0
    failed: set[int] = field(default_factory=set)
    ignored: int = 0  # entries that are not log entries with pending actions


def dispatch(entries: Sequence[Item]) -> Dispatched:
    result = Dispatched()
    actions: list[PendingAction] = []
    owners: list[int] = []
    for position, entry in enumerate(entries):
        where = action_runs.log_entry_of(str(entry.get("PK", "")), str(entry.get("SK", "")))
        waiting = int(entry.get("automation_pending") or 0) > 0  # what the stream's filter reads too
        found = pending_actions(*where, entry) if where is not None and waiting else []
        if not found:
            result.ignored += 1
            continue
        actions += found
        owners += [position] * len(found)
    if not actions:
        return result
    unsent = automation_queue.send(actions)
    result.failed = {owners[index] for index in unsent}
    result.sent = len(actions) - len(unsent)
    return result

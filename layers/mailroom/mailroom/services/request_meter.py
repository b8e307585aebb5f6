"""API requests per organization and month, without a DynamoDB request per API call.

Every authenticated request is counted in this process's memory; the counts are added to the
months' usage items (one UpdateItem ``ADD api_requests :n`` per organization and month pending) at
the end of a request once ``MAILROOM_USAGE_FLUSH_SECONDS`` have passed since the last flush (the
template sets 60; 0, the default outside deployed stacks, flushes at every request). So a warm API
function pays one write per organization it served per minute, whatever its traffic.

Accuracy: nothing is counted twice (a flushed count leaves memory only after its write succeeded);
what a function instance counted and had not flushed when Lambda shuts it down is lost: at most one
flush interval of that instance's traffic, and only for the last requests before an idle instance
is reclaimed. A request is counted in the month it arrived (UTC), even when flushed later.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from mailroom import clock
from mailroom.observability import logger
from mailroom.store import usage
from mailroom.store.errors import StoreError
from mailroom.store.table import Table


class RequestMeter:
    """Pending request counts by (organization, month), flushed at most every ``interval`` seconds.
    Thread-safe (FastAPI may serve requests on several threads of one process)."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._pending: Counter[tuple[str, str]] = Counter()
        self._last_flush = monotonic()
        self._lock = threading.Lock()

    def count(self, org_id: str) -> None:
        month = clock.utcnow().strftime("%Y-%m")
        with self._lock:
            self._pending[(org_id, month)] += 1

    def pending(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._pending)

    def flush_if_due(self, table: Table, *, interval: float) -> int:
        """Flush when ``interval`` seconds passed since the last flush; the writes made."""
        if self._monotonic() - self._last_flush < interval:
            return 0
        return self.flush(table)

    def flush(self, table: Table) -> int:
        """Add every pending count to its month's counter; the writes made. A count whose write
        fails stays pending for the next flush (metering never fails the request it rides on)."""
        with self._lock:
            taken, self._pending = self._pending, Counter()
            self._last_flush = self._monotonic()
        writes = 0
        failed: Counter[tuple[str, str]] = Counter()
        for (org_id, month), n in taken.items():
            try:
                usage.add(table, org_id, month, api_requests=n)
                writes += 1
            except StoreError:
                failed[(org_id, month)] = n
        if failed:
            logger().warning("usage flush failed; kept for the next one", extra={"pending": len(failed)})
            with self._lock:
                self._pending.update(failed)
        return writes


_meter = RequestMeter()


def count(org_id: str) -> None:
    _meter.count(org_id)


def flush_if_due(table: Table) -> int:
    from mailroom.settings import get_settings

    return _meter.flush_if_due(table, interval=get_settings().usage_flush_seconds)


def flush(table: Table) -> int:
    return _meter.flush(table)

"""What a batch is held to (the organization's limits) and what it will take: a time estimate (jobs
start in row order as slots free up) and a storage estimate against the organization's pool. The
assumptions are stated in the answer, since nothing is known of a mailbox before it is opened."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.domain.bulk.request import BATCH_ROWS_LIMIT, CONCURRENCY_LIMIT, RowLimitExceeded
from mailroom.domain.bulk.rows import BulkRow

# --- limits ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_rows_per_batch: int
    concurrent_per_account: int  # jobs of the organization's batches running at once
    global_capacity: int  # migrations running at once on the whole deployment, single and bulk

    @classmethod
    def from_org_limits(cls, limits: Mapping[str, int], *, global_capacity: int) -> BatchLimits:
        """From the organization's limits merged over DEFAULT_LIMITS (services.mailbox_limits.org_limits)."""
        return cls(int(limits[BATCH_ROWS_LIMIT]), int(limits[CONCURRENCY_LIMIT]), global_capacity)

    @property
    def effective_concurrency(self) -> int:
        """How many jobs of one batch can run at once at best (at least 1, for estimates)."""
        return max(1, min(self.concurrent_per_account, self.global_capacity))

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_rows_per_batch": self.max_rows_per_batch,
            "concurrent_per_account": self.concurrent_per_account,
            "global_capacity": self.global_capacity,
        }


def check_row_limit(rows: int, limit: int) -> None:
    """Every data row counts (invalid ones too): the limit is on what a user sends, and a batch
    that passes must not start failing once someone fixes its invalid rows."""
    if rows > limit:
        raise RowLimitExceeded(rows, limit)


# --- estimates -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What an estimate assumes where nothing is known. The defaults are placeholders, NOT
    measurements: a mid-sized mailbox (5,000 messages of 75 KB) and a per-job rate of 10
    messages/second with 30 s to connect and plan. Replace ``messages_per_second`` with the rate
    bench/ measures for the IMAP fetch once it exists."""

    average_mailbox_messages: int = 5_000
    average_message_bytes: int = 75_000
    messages_per_second: float = 10.0
    per_job_overhead_seconds: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "average_mailbox_messages": self.average_mailbox_messages,
            "average_message_bytes": self.average_message_bytes,
            "messages_per_second": self.messages_per_second,
            "per_job_overhead_seconds": self.per_job_overhead_seconds,
        }


DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass(frozen=True, slots=True)
class TimeEstimate:
    estimated_seconds: int
    human: str
    concurrency: int
    waves: int  # ceil(jobs / concurrency): how many rounds of jobs, were all the same size
    messages: int
    rows_assumed: int  # rows whose message count is the assumed average
    assumptions: Assumptions

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated_seconds": self.estimated_seconds,
            "human": self.human,
            "concurrency": self.concurrency,
            "waves": self.waves,
            "messages": self.messages,
            "rows_assumed": self.rows_assumed,
            "assumptions": self.assumptions.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class StorageEstimate:
    estimated_bytes: int
    available_bytes: int
    fits: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated_bytes": self.estimated_bytes,
            "available_bytes": self.available_bytes,
            "fits": self.fits,
        }


def _row_messages(rows: Sequence[BulkRow], counts: Mapping[int, int], assumptions: Assumptions) -> list[int]:
    return [counts.get(row.row, assumptions.average_mailbox_messages) for row in rows]


def estimate_time(
    rows: Sequence[BulkRow],
    *,
    concurrency: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
) -> TimeEstimate:
    """How long the valid rows take: each job ``overhead + messages / rate``, started in row order
    as slots free up (what ``next_jobs_to_start`` does), ``concurrency`` at a time. With every
    mailbox the same size this is exactly ``ceil(rows / concurrency)`` waves of one job's time.
    ``message_counts`` maps a row number to its known message count."""
    valid = [row for row in rows if row.is_valid]
    counts = message_counts or {}
    messages = _row_messages(valid, counts, assumptions)
    concurrency = max(1, concurrency)
    rate = max(assumptions.messages_per_second, 1e-9)
    durations = [assumptions.per_job_overhead_seconds + count / rate for count in messages]
    seconds = math.ceil(_makespan(durations, concurrency))
    return TimeEstimate(
        estimated_seconds=seconds,
        human=human_duration(seconds) if valid else "nothing to migrate",
        concurrency=concurrency,
        waves=math.ceil(len(valid) / concurrency),
        messages=sum(messages),
        rows_assumed=sum(1 for row in valid if row.row not in counts),
        assumptions=assumptions,
    )


def _makespan(durations: Sequence[float], workers: int) -> float:
    """When the last job ends if each starts, in order, on the first worker to be free."""
    free_at = [0.0] * min(workers, len(durations))
    for duration in durations:
        heapq.heapreplace(free_at, free_at[0] + duration)
    return max(free_at, default=0.0)


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def human_duration(seconds: int) -> str:
    """``about 2 hours 5 minutes``: minutes rounded up (an estimate that runs over disappoints)."""
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"about {plural(minutes, 'minute')}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {plural(hours, 'hour')}" + (f" {plural(minutes, 'minute')}" if minutes else "")
    days, hours = divmod(math.ceil(seconds / 3600), 24)
    return f"about {plural(days, 'day')}" + (f" {plural(hours, 'hour')}" if hours else "")


def estimate_storage(
    rows: Sequence[BulkRow],
    *,
    available_bytes: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
) -> StorageEstimate:
    """Messages of the valid rows times the average message size, against what the caller says
    the organization's storage pool has free."""
    valid = [row for row in rows if row.is_valid]
    messages = sum(_row_messages(valid, message_counts or {}, assumptions))
    estimated = messages * assumptions.average_message_bytes
    return StorageEstimate(estimated, max(available_bytes, 0), estimated <= available_bytes)

"""What a batch is held to (the organization's limits) and what it will take: a time estimate (jobs
start in row order as slots free up) and a storage estimate against the organization's pool. The
figures used are stated in the answer (``assumptions``) with where each comes from (``basis``):
the rows whose sources were probed (domain/migration_estimates.py), the throughput the deployment
recorded, defaults for the rest."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.domain.bulk.request import BATCH_ROWS_LIMIT, CONCURRENCY_LIMIT, RowLimitExceeded
from mailroom.domain.bulk.rows import BulkRow
from mailroom.domain.migration_estimates import (
    DEFAULT_MAILBOX_MESSAGES,
    DEFAULT_MESSAGE_BYTES,
    DEFAULT_MESSAGES_PER_SECOND,
    DEFAULT_OVERHEAD_SECONDS,
    Basis,
    CountBasis,
    SizeBasis,
    SourceSize,
    Throughput,
    human_duration,
)

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
    """The figures an estimate uses: measured where ``Basis`` says so, else the defaults
    (placeholders, NOT measurements: a mid-sized mailbox of 5,000 messages of 75 KB, 10 messages a
    second with 30 s to connect and plan)."""

    average_mailbox_messages: int = DEFAULT_MAILBOX_MESSAGES
    average_message_bytes: int = DEFAULT_MESSAGE_BYTES
    messages_per_second: float = DEFAULT_MESSAGES_PER_SECOND
    per_job_overhead_seconds: float = DEFAULT_OVERHEAD_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {
            "average_mailbox_messages": self.average_mailbox_messages,
            "average_message_bytes": self.average_message_bytes,
            "messages_per_second": round(self.messages_per_second, 3),
            "per_job_overhead_seconds": round(self.per_job_overhead_seconds, 3),
        }


DEFAULT_BASIS = Basis("default", "default", "default", 0)


def measured(
    valid_rows: int, sources: Mapping[int, SourceSize], throughput: Throughput
) -> tuple[Assumptions, Basis]:
    """The assumptions for a batch whose probed rows found ``sources`` (row → size), at the
    deployment's ``throughput``: a row not probed is taken as the probed rows' mean mailbox, their
    bytes per message stand for every row's, and the basis says how much of that is measured."""
    probed = list(sources.values())
    messages = sum(s.messages for s in probed)
    sized = [s for s in probed if s.basis != "default"]
    sized_messages = sum(s.messages for s in sized)
    assumptions = Assumptions(
        average_mailbox_messages=round(messages / len(probed)) if probed else DEFAULT_MAILBOX_MESSAGES,
        average_message_bytes=(
            round(sum(s.bytes for s in sized) / sized_messages) if sized_messages else DEFAULT_MESSAGE_BYTES
        ),
        messages_per_second=throughput.messages_per_second,
        per_job_overhead_seconds=throughput.overhead_seconds,
    )
    counts: CountBasis = "default"
    if probed:
        counts = "counted" if len(probed) >= valid_rows else "sampled"
    size: SizeBasis = "default"
    if sized:
        every = len(sized) >= valid_rows and all(s.basis == "counted" for s in sized)
        size = "counted" if every else "sampled"
    return assumptions, Basis(counts, size, throughput.basis, throughput.jobs)


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
    basis: Basis = DEFAULT_BASIS

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated_seconds": self.estimated_seconds,
            "human": self.human,
            "concurrency": self.concurrency,
            "waves": self.waves,
            "messages": self.messages,
            "rows_assumed": self.rows_assumed,
            "assumptions": self.assumptions.as_dict(),
            "basis": self.basis.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class StorageEstimate:
    estimated_bytes: int
    available_bytes: int
    fits: bool
    basis: Basis = DEFAULT_BASIS

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimated_bytes": self.estimated_bytes,
            "available_bytes": self.available_bytes,
            "fits": self.fits,
            "basis": self.basis.as_dict(),
        }


def _row_messages(rows: Sequence[BulkRow], counts: Mapping[int, int], assumptions: Assumptions) -> list[int]:
    return [counts.get(row.row, assumptions.average_mailbox_messages) for row in rows]


def estimate_time(
    rows: Sequence[BulkRow],
    *,
    concurrency: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
    basis: Basis = DEFAULT_BASIS,
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
        basis=basis,
    )


def _makespan(durations: Sequence[float], workers: int) -> float:
    """When the last job ends if each starts, in order, on the first worker to be free."""
    free_at = [0.0] * min(workers, len(durations))
    for duration in durations:
        heapq.heapreplace(free_at, free_at[0] + duration)
    return max(free_at, default=0.0)


def estimate_storage(
    rows: Sequence[BulkRow],
    *,
    available_bytes: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
    message_bytes: Mapping[int, int] | None = None,
    basis: Basis = DEFAULT_BASIS,
) -> StorageEstimate:
    """The valid rows' bytes (a probed row's own, else its messages times the average message size),
    against what the caller says the organization's storage pool has free."""
    valid = [row for row in rows if row.is_valid]
    known = message_bytes or {}
    counts = _row_messages(valid, message_counts or {}, assumptions)
    estimated = sum(
        known[row.row] if row.row in known else messages * assumptions.average_message_bytes
        for row, messages in zip(valid, counts, strict=True)
    )
    return StorageEstimate(estimated, max(available_bytes, 0), estimated <= available_bytes, basis)

"""What a migration will take, from what was measured: the source's message counts and sizes (a
bounded probe: ``SourceSize``) and the throughput this deployment recorded on its completed jobs
(``Throughput``). Defaults stand in only where nothing was measured, and every estimate says which
of its figures are which (``Basis``). Pure: the probe is services/migration_probe.py, the recorded
throughput store/migrations.py's.

Time model: a job takes a fixed overhead (log in, list, plan: measured between a job's start and
its first batch) plus its messages at the measured rate (messages handled while processing, over
the time spent processing). Storage: the source's bytes (RFC822.SIZE, what Mailroom stores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mailroom import clock

# Defaults: placeholders for what nothing measured yet, NOT measurements (a mid-sized mailbox).
DEFAULT_MAILBOX_MESSAGES = 5_000
DEFAULT_MESSAGE_BYTES = 75_000
DEFAULT_MESSAGES_PER_SECOND = 10.0
DEFAULT_OVERHEAD_SECONDS = 30.0

SizeBasis = Literal["counted", "sampled", "default"]
CountBasis = Literal["counted", "sampled", "default"]
ThroughputBasis = Literal["measured", "default"]


# --- throughput ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What one completed job adds to the deployment's throughput."""

    messages: int  # handled while processing (imported, skipped or failed), this attempt
    bytes: int  # their RFC822.SIZE
    transfer_ms: int  # from its first batch to its end
    overhead_ms: int  # from its start to its first batch (log in, list, plan)

    def as_dict(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "transfer_ms": self.transfer_ms,
            "overhead_ms": self.overhead_ms,
        }


def job_record(job: Mapping[str, Any], finished_at: str) -> JobRecord | None:
    """The record of a job completing at ``finished_at``; None when its timestamps do not allow one
    (a job planned before the processing time was kept)."""
    started, processing = job.get("started_at"), job.get("processing_at")
    if not started or not processing:
        return None
    start, first_batch, end = (clock.parse_iso(str(v)) for v in (started, processing, finished_at))
    overhead = (first_batch - start).total_seconds()
    transfer = (end - first_batch).total_seconds()
    if overhead < 0 or transfer < 0:
        return None  # clocks of different hosts disagreed: nothing trustworthy to add
    return JobRecord(
        messages=max(0, int(job.get("transferred_messages", 0))),
        bytes=max(0, int(job.get("transferred_bytes", 0))),
        transfer_ms=round(transfer * 1000),
        overhead_ms=round(overhead * 1000),
    )


@dataclass(frozen=True, slots=True)
class Throughput:
    """The sums of every completed job's record (the default before the first one)."""

    jobs: int = 0
    messages: int = 0
    bytes: int = 0
    transfer_ms: int = 0
    overhead_ms: int = 0

    @classmethod
    def of(cls, item: Mapping[str, Any] | None) -> Throughput:
        if not item:
            return cls()
        names = ("jobs", "messages", "bytes", "transfer_ms", "overhead_ms")
        return cls(*(max(0, int(item.get(name, 0))) for name in names))

    @property
    def measured(self) -> bool:
        """A rate needs messages moved in measurable time; until then the defaults stand."""
        return self.jobs > 0 and self.messages > 0 and self.transfer_ms > 0

    @property
    def basis(self) -> ThroughputBasis:
        return "measured" if self.measured else "default"

    @property
    def messages_per_second(self) -> float:
        if not self.measured:
            return DEFAULT_MESSAGES_PER_SECOND
        return self.messages / (self.transfer_ms / 1000)

    @property
    def overhead_seconds(self) -> float:
        if not self.measured:
            return DEFAULT_OVERHEAD_SECONDS
        return self.overhead_ms / 1000 / self.jobs

    def job_seconds(self, messages: int) -> float:
        return self.overhead_seconds + max(0, messages) / max(self.messages_per_second, 1e-9)


# --- the source's size -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FolderSizes:
    """What a probe read of one folder: its message count, its exact size when the server says it
    (STATUS=SIZE, RFC 8438), and the RFC822.SIZE of the messages it sampled."""

    messages: int
    exact_bytes: int | None = None
    sampled: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceSize:
    """A source account's messages and bytes, and how the bytes are known."""

    messages: int
    bytes: int
    basis: SizeBasis
    sampled_messages: int = 0  # messages whose size was read one by one

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "size_basis": self.basis,
            "sampled_messages": self.sampled_messages,
        }


def source_size(folders: Sequence[FolderSizes], *, default_bytes: int = DEFAULT_MESSAGE_BYTES) -> SourceSize:
    """The account's bytes: a folder's exact size if known, else its sampled mean times its count; a
    folder nothing was read of takes the mean of every sample (else ``default_bytes``). Counted
    when every message's size is known, default when none is, sampled in between."""
    all_sampled = [size for folder in folders for size in folder.sampled]
    fallback = sum(all_sampled) / len(all_sampled) if all_sampled else float(default_bytes)
    total = 0.0
    kinds: set[str] = set()
    for folder in folders:
        if folder.messages <= 0:
            continue
        if folder.exact_bytes is not None:
            total += folder.exact_bytes
            kinds.add("counted")
        elif folder.sampled:
            total += sum(folder.sampled) / len(folder.sampled) * folder.messages
            kinds.add("counted" if len(folder.sampled) >= folder.messages else "sampled")
        else:
            total += fallback * folder.messages
            kinds.add("sampled" if all_sampled else "default")
    messages = sum(max(0, folder.messages) for folder in folders)
    basis: SizeBasis = "counted" if kinds <= {"counted"} else "default" if kinds == {"default"} else "sampled"
    return SourceSize(messages, round(total), basis, len(all_sampled))


def sample_plan(counts: Sequence[int], budget: int) -> list[int]:
    """How many messages to sample in each folder, ``budget`` in all: in proportion to the folders'
    counts, at least one per non-empty folder while the budget lasts (largest first), never more
    than a folder has."""
    plan = [0] * len(counts)
    total = sum(max(0, c) for c in counts)
    if total <= budget:
        return [max(0, c) for c in counts]
    order = sorted(range(len(counts)), key=lambda i: -counts[i])
    left = budget
    for i in order:
        if counts[i] > 0 and left > 0:
            plan[i], left = 1, left - 1
    for i in order:
        if left <= 0:
            break
        share = min(counts[i] - plan[i], math.floor(budget * counts[i] / total) - plan[i], left)
        if share > 0:
            plan[i] += share
            left -= share
    return plan


def spread(count: int, take: int) -> list[int]:
    """``take`` of the 1-based positions ``1..count``: the middle of each of ``take`` equal stretches
    (old and new messages alike; a size that grows with age is not biased either way)."""
    if take <= 0 or count <= 0:
        return []
    if take >= count:
        return list(range(1, count + 1))
    positions = []
    for i in range(take):
        first = -(-i * count // take)  # the 0-based indices of stretch i: ceil(i·count/take) ...
        last = -(-(i + 1) * count // take) - 1  # ... to ceil((i+1)·count/take) - 1
        positions.append((first + last + 1) // 2 + 1)
    return positions


# --- the estimate ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Basis:
    """Where an estimate's figures come from."""

    messages: CountBasis
    size: SizeBasis
    throughput: ThroughputBasis
    jobs_measured: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "size": self.size,
            "throughput": self.throughput,
            "jobs_measured": self.jobs_measured,
        }


@dataclass(frozen=True, slots=True)
class MigrationEstimate:
    """One migration's time and storage."""

    messages: int
    bytes: int
    seconds: int
    messages_per_second: float
    overhead_seconds: float
    basis: Basis

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "estimated_seconds": self.seconds,
            "human": human_duration(self.seconds),
            "messages_per_second": round(self.messages_per_second, 3),
            "per_job_overhead_seconds": round(self.overhead_seconds, 3),
            "basis": self.basis.as_dict(),
        }


def estimate_migration(size: SourceSize | None, throughput: Throughput) -> MigrationEstimate:
    """A job's estimate from what its source holds (None: nothing counted yet, the defaults)."""
    if size is None:
        size = SourceSize(
            DEFAULT_MAILBOX_MESSAGES, DEFAULT_MAILBOX_MESSAGES * DEFAULT_MESSAGE_BYTES, "default"
        )
        counted: CountBasis = "default"
    else:
        counted = "counted"
    return MigrationEstimate(
        messages=size.messages,
        bytes=size.bytes,
        seconds=math.ceil(throughput.job_seconds(size.messages)),
        messages_per_second=throughput.messages_per_second,
        overhead_seconds=throughput.overhead_seconds,
        basis=Basis(counted, size.basis, throughput.basis, throughput.jobs),
    )


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

"""The preview of a bulk request: every row's category, the limits, the estimates (what ``POST
/migrations/bulk/preview`` answers and what ``POST /migrations/bulk`` starts), and batch names."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailroom.domain.bulk.data import parse_data
from mailroom.domain.bulk.estimates import (
    DEFAULT_ASSUMPTIONS,
    DEFAULT_BASIS,
    Assumptions,
    BatchLimits,
    StorageEstimate,
    TimeEstimate,
    check_row_limit,
    estimate_storage,
    estimate_time,
    measured,
)
from mailroom.domain.bulk.request import MAX_BATCH_NAME_LENGTH, InvalidBulkRequest, ServerRequest
from mailroom.domain.bulk.rows import BulkRow, categorize, category_counts
from mailroom.domain.bulk.servers import PresetResolver, provider_of, resolve_request_server
from mailroom.domain.migration_estimates import SourceSize, Throughput, plural

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


# --- the preview -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    rows: tuple[BulkRow, ...]
    provider: str
    limits: BatchLimits
    time_estimate: TimeEstimate
    storage: StorageEstimate
    sources: Mapping[int, SourceSize] | None = None  # row → what its probe found

    @property
    def valid_rows(self) -> list[BulkRow]:
        return [row for row in self.rows if row.is_valid]

    @property
    def counts(self) -> dict[str, int]:
        return category_counts(self.rows)

    def _row(self, row: BulkRow) -> dict[str, Any]:
        found = (self.sources or {}).get(row.row)
        return {**row.as_dict(), "source_size": found.as_dict() if found else None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "counts": self.counts,
            "can_start": bool(self.valid_rows),
            "rows": [self._row(row) for row in self.rows],
            "limits": self.limits.as_dict(),
            "time_estimate": self.time_estimate.as_dict(),
            "storage": self.storage.as_dict(),
        }


def preview(
    data: str,
    *,
    request: ServerRequest,
    limits: BatchLimits,
    resolve_preset: PresetResolver,
    mailbox_id_for: Callable[[str], str | None],
    destination_busy: Callable[[str], bool],
    available_storage_bytes: int,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
    message_counts: Mapping[int, int] | None = None,
    throughput: Throughput | None = None,
    sources: Mapping[int, SourceSize] | None = None,
    allow_private_hosts: bool = False,
) -> Preview:
    """Everything ``POST /migrations/bulk/preview`` answers, and what ``POST /migrations/bulk``
    starts (``valid_rows``). Raises InvalidBulkRequest (RowLimitExceeded for too many rows).

    With ``throughput`` (the deployment's), the estimates are built from it and from the probed
    rows' ``sources`` (``estimates.measured``); without, from ``assumptions`` as given."""
    server = resolve_request_server(
        request, resolve_preset=resolve_preset, allow_private_hosts=allow_private_hosts
    )
    lines = parse_data(data)
    check_row_limit(len(lines), limits.max_rows_per_batch)
    rows = categorize(
        lines,
        server=server,
        mailbox_id_for=mailbox_id_for,
        destination_busy=destination_busy,
        server_defaults=request,
        allow_private_hosts=allow_private_hosts,
    )
    basis = DEFAULT_BASIS
    message_bytes: dict[int, int] = {}
    if throughput is not None:
        valid = {row.row for row in rows if row.is_valid}
        found = {number: size for number, size in (sources or {}).items() if number in valid}
        assumptions, basis = measured(len(valid), found, throughput)
        message_counts = {number: size.messages for number, size in found.items()}
        message_bytes = {number: size.bytes for number, size in found.items() if size.basis != "default"}
    return Preview(
        rows=tuple(rows),
        provider=provider_of(request),
        limits=limits,
        time_estimate=estimate_time(
            rows,
            concurrency=limits.effective_concurrency,
            assumptions=assumptions,
            message_counts=message_counts,
            basis=basis,
        ),
        storage=estimate_storage(
            rows,
            available_bytes=available_storage_bytes,
            assumptions=assumptions,
            message_counts=message_counts,
            message_bytes=message_bytes,
            basis=basis,
        ),
        sources=sources,
    )


# --- batch names -----------------------------------------------------------------------------------


def batch_name(raw: str | None, *, now: datetime, accounts: int) -> str:
    """The name as given (trimmed), or ``Bulk migration 2026-11-21 14:05 UTC (42 accounts)``."""
    name = (raw or "").strip()
    if not name:
        moment = now.astimezone(UTC)
        return f"Bulk migration {moment:%Y-%m-%d %H:%M} UTC ({plural(accounts, 'account')})"
    if len(name) > MAX_BATCH_NAME_LENGTH:
        raise InvalidBulkRequest(f"name must be at most {MAX_BATCH_NAME_LENGTH} characters", field="name")
    if _CONTROL_RE.search(name):
        raise InvalidBulkRequest("name must not contain control characters or line breaks", field="name")
    return name

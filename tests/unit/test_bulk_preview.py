"""Bulk migrations: the organization's limits, time and storage estimates, the preview, batch names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailroom.domain.bulk.estimates import (
    Assumptions,
    BatchLimits,
    StorageEstimate,
    check_row_limit,
    estimate_storage,
    estimate_time,
)
from mailroom.domain.bulk.preview import Preview, batch_name, preview
from mailroom.domain.bulk.request import (
    BATCH_ROWS_LIMIT,
    CONCURRENCY_LIMIT,
    MAX_BATCH_NAME_LENGTH,
    InvalidBulkRequest,
    RowLimitExceeded,
    ServerRequest,
)
from mailroom.domain.bulk.rows import BulkRow, RowCategory
from mailroom.domain.bulk.servers import ImapServer
from mailroom.domain.migration_estimates import human_duration
from mailroom.store.organizations import DEFAULT_LIMITS
from tests.support.bulk import MAILBOXES, fake_resolve

# --- limits ----------------------------------------------------------------------------------------


def test_default_limits_hold_the_bulk_keys() -> None:
    assert DEFAULT_LIMITS[BATCH_ROWS_LIMIT] == 300
    assert DEFAULT_LIMITS[CONCURRENCY_LIMIT] == 5
    limits = BatchLimits.from_org_limits({**DEFAULT_LIMITS, "migration_concurrency": 2}, global_capacity=20)
    assert limits == BatchLimits(300, 2, 20)
    assert limits.as_dict() == {"max_rows_per_batch": 300, "concurrent_per_account": 2, "global_capacity": 20}


def test_effective_concurrency_is_bounded_by_global_capacity_and_never_zero() -> None:
    assert BatchLimits(100, 10, 4).effective_concurrency == 4
    assert BatchLimits(100, 0, 20).effective_concurrency == 1


def test_row_limit() -> None:
    check_row_limit(300, 300)
    with pytest.raises(RowLimitExceeded) as caught:
        check_row_limit(301, 300)
    error = caught.value
    assert (error.rows, error.limit, error.limit_name, error.field) == (
        301,
        300,
        "migration_batch_rows",
        "data",
    )
    assert "migration_batch_rows" in str(error) and "301" in str(error) and "300" in str(error)
    assert isinstance(error, InvalidBulkRequest)


# --- estimates -------------------------------------------------------------------------------------

FLAT = Assumptions(
    average_mailbox_messages=1000,
    average_message_bytes=50_000,
    messages_per_second=10,
    per_job_overhead_seconds=0,
)


def valid_rows(count: int) -> list[BulkRow]:
    return [BulkRow(i, RowCategory.VALID, f"u{i}@gmail.com", "alice@acme.com") for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("rows", "concurrency", "waves"), [(1, 5, 1), (5, 5, 1), (6, 5, 2), (12, 5, 3), (7, 1, 7)]
)
def test_equal_mailboxes_take_ceil_rows_over_concurrency_waves(
    rows: int, concurrency: int, waves: int
) -> None:
    estimate = estimate_time(valid_rows(rows), concurrency=concurrency, assumptions=FLAT)
    assert estimate.waves == waves
    assert estimate.estimated_seconds == waves * 100  # 1000 messages at 10/s
    assert estimate.messages == rows * 1000
    assert estimate.rows_assumed == rows


def test_overhead_is_per_job() -> None:
    assumptions = Assumptions(1000, 50_000, 10, per_job_overhead_seconds=30)
    estimate = estimate_time(valid_rows(4), concurrency=2, assumptions=assumptions)
    assert estimate.estimated_seconds == 2 * (30 + 100)


def test_known_counts_replace_the_assumption_and_jobs_start_as_slots_free() -> None:
    rows = valid_rows(3)
    # row 1: 3000 messages (300 s), rows 2 and 3: 500 each (50 s); two at once:
    # row 2 ends at 50, row 3 runs 50..100, row 1 ends at 300.
    estimate = estimate_time(rows, concurrency=2, assumptions=FLAT, message_counts={1: 3000, 2: 500, 3: 500})
    assert estimate.estimated_seconds == 300
    assert estimate.messages == 4000
    assert estimate.rows_assumed == 0
    mixed = estimate_time(rows, concurrency=1, assumptions=FLAT, message_counts={2: 0})
    assert (mixed.estimated_seconds, mixed.rows_assumed, mixed.messages) == (200, 2, 2000)


def test_only_valid_rows_are_estimated() -> None:
    rows = [*valid_rows(2), BulkRow(3, RowCategory.MISSING_PASSWORD, "x@gmail.com", "alice@acme.com")]
    estimate = estimate_time(rows, concurrency=1, assumptions=FLAT)
    assert (estimate.estimated_seconds, estimate.messages) == (200, 2000)
    storage = estimate_storage(rows, available_bytes=10**9, assumptions=FLAT)
    assert storage.estimated_bytes == 2 * 1000 * 50_000


def test_nothing_to_estimate() -> None:
    estimate = estimate_time([], concurrency=5)
    assert (estimate.estimated_seconds, estimate.waves, estimate.human) == (0, 0, "nothing to migrate")


def test_a_fractional_duration_is_rounded_up() -> None:
    assumptions = Assumptions(1, 1, messages_per_second=3, per_job_overhead_seconds=0)
    assert estimate_time(valid_rows(1), concurrency=1, assumptions=assumptions).estimated_seconds == 1


@pytest.mark.parametrize(
    ("seconds", "human"),
    [
        (0, "less than a minute"),
        (59, "less than a minute"),
        (60, "about 1 minute"),
        (61, "about 2 minutes"),
        (3599, "about 1 hour"),
        (3600, "about 1 hour"),
        (3660, "about 1 hour 1 minute"),
        (7500, "about 2 hours 5 minutes"),
        (48 * 3600, "about 2 days"),
        (49 * 3600 + 1, "about 2 days 2 hours"),  # 2 days 1 hour 1 minute, hours shown without minutes
    ],
)
def test_human_duration(seconds: int, human: str) -> None:
    assert human_duration(seconds) == human


def test_storage_fits_or_not() -> None:
    rows = valid_rows(2)
    fits = estimate_storage(rows, available_bytes=100_000_000, assumptions=FLAT)
    assert fits == StorageEstimate(100_000_000, 100_000_000, True)
    tight = estimate_storage(rows, available_bytes=99_999_999, assumptions=FLAT)
    assert tight.fits is False
    known = estimate_storage(rows, available_bytes=0, assumptions=FLAT, message_counts={1: 0, 2: 0})
    assert (known.estimated_bytes, known.fits) == (0, True)
    overdrawn = estimate_storage([], available_bytes=-5, assumptions=FLAT)
    assert overdrawn.available_bytes == 0


# --- the preview -----------------------------------------------------------------------------------


def make_preview(data: str, **overrides: object) -> Preview:
    kwargs: dict[str, object] = {
        "request": ServerRequest(provider="gmail"),
        "limits": BatchLimits(300, 5, 20),
        "resolve_preset": fake_resolve,
        "mailbox_id_for": MAILBOXES.get,
        "destination_busy": frozenset({"mbx_carol"}).__contains__,
        "available_storage_bytes": 10**12,
        "assumptions": FLAT,
    }
    kwargs.update(overrides)
    return preview(data, **kwargs)  # type: ignore[arg-type]


def test_preview_end_to_end_serializes_to_json() -> None:
    data = "\ufeffsource_email,source_password,destination_email\r\n"
    data += "a@gmail.com,pw1,alice@acme.com\r\nb@gmail.com,pw2,bob@acme.com\r\n"
    data += "c@gmail.com,pw3,carol@acme.com\r\nbad,pw,alice@acme.com\r\n"
    result = make_preview(data)
    body = json.loads(json.dumps(result.as_dict()))
    assert body["provider"] == "gmail"
    assert body["counts"]["valid"] == 2
    assert body["counts"]["destination_busy"] == 1
    assert body["counts"]["invalid_source_email"] == 1
    assert body["counts"]["total"] == 4
    assert set(body["counts"]) == {category.value for category in RowCategory} | {"total"}
    assert body["can_start"] is True
    assert [row["row"] for row in body["rows"]] == [2, 3, 4, 5]
    assert body["limits"] == {"max_rows_per_batch": 300, "concurrent_per_account": 5, "global_capacity": 20}
    assert body["time_estimate"]["estimated_seconds"] == 100  # two mailboxes side by side
    assert body["time_estimate"]["human"] == "about 2 minutes"
    defaults = {"messages": "default", "size": "default", "throughput": "default", "jobs_measured": 0}
    assert body["storage"] == {
        "estimated_bytes": 100_000_000,
        "available_bytes": 10**12,
        "fits": True,
        "basis": defaults,
    }
    assert body["time_estimate"]["basis"] == defaults
    assert all(row["source_size"] is None for row in body["rows"])  # nothing probed
    assert "pw1" not in json.dumps(body)
    assert [row.password for row in result.valid_rows] == ["pw1", "pw2"]


def test_preview_counts_rows_against_the_limit_before_looking_anything_up() -> None:
    asked: list[str] = []

    def lookup(email: str) -> str | None:
        asked.append(email)
        return None

    data = "\n".join(f"u{i}@gmail.com,pw,alice@acme.com" for i in range(4))
    with pytest.raises(RowLimitExceeded):
        make_preview(data, limits=BatchLimits(3, 2, 20), mailbox_id_for=lookup)
    assert asked == []
    assert make_preview(data, limits=BatchLimits(4, 2, 20)).counts["total"] == 4


def test_preview_checks_the_request_before_the_data() -> None:
    with pytest.raises(InvalidBulkRequest) as caught:
        make_preview("", request=ServerRequest(provider="generic_imap"))
    assert caught.value.field == "source_host"


def test_preview_with_nothing_valid_cannot_start() -> None:
    result = make_preview("a@gmail.com,,alice@acme.com")
    assert result.as_dict()["can_start"] is False
    assert result.time_estimate.human == "nothing to migrate"


def test_preview_with_per_row_servers() -> None:
    result = make_preview(
        "a@gmail.com,pw,alice@acme.com,imap.example.net,,\nb@gmail.com,pw,bob@acme.com,bad host,993,ssl",
        request=ServerRequest(per_row_server=True, source_security="tls"),
    )
    assert [row.category for row in result.rows] == [RowCategory.VALID, RowCategory.INVALID_SERVER]
    assert result.rows[0].server == ImapServer("imap.example.net", 993, "tls")
    assert result.provider == "generic_imap"


# --- batch names -----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 14, 5, 33, tzinfo=UTC)


def test_batch_name_is_generated_when_empty() -> None:
    assert batch_name(None, now=NOW, accounts=42) == "Bulk migration 2026-11-21 14:05 UTC (42 accounts)"
    assert batch_name("  ", now=NOW, accounts=1) == "Bulk migration 2026-11-21 14:05 UTC (1 account)"
    elsewhere = NOW.astimezone(timezone(timedelta(hours=-8)))
    assert batch_name("", now=elsewhere, accounts=2).startswith("Bulk migration 2026-11-21 14:05 UTC")


def test_batch_name_is_kept_trimmed_and_checked() -> None:
    assert batch_name("  Acme move ", now=NOW, accounts=3) == "Acme move"
    assert batch_name("x" * MAX_BATCH_NAME_LENGTH, now=NOW, accounts=3) == "x" * 100
    with pytest.raises(InvalidBulkRequest, match="at most 100") as caught:
        batch_name("x" * 101, now=NOW, accounts=3)
    assert caught.value.field == "name"
    with pytest.raises(InvalidBulkRequest, match="control"):
        batch_name("two\nlines", now=NOW, accounts=3)

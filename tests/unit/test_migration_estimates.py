"""Estimates from measurement (domain/migration_estimates.py, domain/bulk/estimates.py): the
deployment's throughput, a source's size from counts, STATUS=SIZE and samples, the basis each
estimate states, and the bulk preview built from probed rows."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.domain.bulk.estimates import BatchLimits, measured
from mailroom.domain.bulk.preview import preview
from mailroom.domain.bulk.request import ServerRequest
from mailroom.domain.migration_estimates import (
    DEFAULT_MESSAGE_BYTES,
    FolderSizes,
    SourceSize,
    Throughput,
    estimate_migration,
    job_record,
    sample_plan,
    source_size,
    spread,
)
from mailroom.imap import response
from tests.support.bulk import MAILBOXES, fake_resolve

# --- throughput ------------------------------------------------------------------------------------


def test_the_defaults_stand_until_a_job_moved_messages_in_measurable_time() -> None:
    for item in (None, {}, {"jobs": 2, "messages": 0, "transfer_ms": 500}, {"jobs": 1, "messages": 9}):
        throughput = Throughput.of(item)
        assert (throughput.basis, throughput.messages_per_second, throughput.overhead_seconds) == (
            "default",
            10.0,
            30.0,
        )


def test_measured_throughput_is_the_rate_while_processing_and_the_mean_overhead() -> None:
    throughput = Throughput.of(
        {"jobs": 4, "messages": 1200, "bytes": 9_000_000, "transfer_ms": 60_000, "overhead_ms": 8_000}
    )
    assert throughput.basis == "measured"
    assert throughput.messages_per_second == 20.0
    assert throughput.overhead_seconds == 2.0
    assert throughput.job_seconds(400) == 22.0


def test_a_job_record_splits_its_time_at_its_first_batch() -> None:
    job = {
        "started_at": "2026-12-07T10:00:00.000Z",
        "processing_at": "2026-12-07T10:00:04.250Z",
        "transferred_messages": 300,
        "transferred_bytes": 4_500_000,
        "imported_messages": 900,  # includes what an earlier attempt imported: not this attempt's work
    }
    record = job_record(job, "2026-12-07T10:00:19.250Z")
    assert record is not None
    assert record.as_dict() == {
        "messages": 300,
        "bytes": 4_500_000,
        "transfer_ms": 15_000,
        "overhead_ms": 4_250,
    }
    assert job_record({**job, "processing_at": None}, "2026-12-07T10:00:19.250Z") is None
    assert job_record(job, "2026-12-07T10:00:01.000Z") is None  # ends before it processed: clocks disagree


# --- a source's size -------------------------------------------------------------------------------


def test_sizes_are_counted_when_every_message_is_known() -> None:
    size = source_size([FolderSizes(3, exact_bytes=3000), FolderSizes(2, sampled=(100, 300)), FolderSizes(0)])
    assert (size.messages, size.bytes, size.basis, size.sampled_messages) == (5, 3400, "counted", 2)


def test_a_sample_stands_for_its_folder_and_for_folders_not_opened() -> None:
    size = source_size(
        [FolderSizes(100, sampled=(1000, 3000)), FolderSizes(10, exact_bytes=7), FolderSizes(50)]
    )
    # 100 * 2000 + 7 + 50 * the mean of every sample (2000)
    assert (size.messages, size.bytes, size.basis) == (160, 300_007, "sampled")


def test_without_any_size_the_default_stands() -> None:
    assert source_size([FolderSizes(4), FolderSizes(0)]) == SourceSize(
        4, 4 * DEFAULT_MESSAGE_BYTES, "default"
    )
    assert source_size([]).basis == "counted"  # an empty account: nothing unknown, 0 bytes
    assert source_size([]).bytes == 0


@settings(max_examples=60, derandomize=True)
@given(
    st.lists(st.integers(min_value=0, max_value=100_000), max_size=30),
    st.integers(min_value=0, max_value=400),
)
def test_a_sample_plan_keeps_to_its_budget_and_to_each_folder(counts: list[int], budget: int) -> None:
    plan = sample_plan(counts, budget)
    assert len(plan) == len(counts)
    assert all(0 <= take <= max(0, count) for take, count in zip(plan, counts, strict=True))
    if sum(counts) <= budget:
        assert plan == counts
    else:
        assert sum(plan) <= budget
        nonempty = sorted((c for c in counts if c > 0), reverse=True)
        assert sum(1 for take in plan if take > 0) >= min(len(nonempty), budget)


@settings(max_examples=60, derandomize=True)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=500))
def test_spread_positions_are_distinct_in_range_one_per_stretch(count: int, take: int) -> None:
    positions = spread(count, take)
    assert positions == sorted(set(positions))
    assert all(1 <= p <= count for p in positions)
    assert len(positions) == min(count, take)
    if 0 < take <= count:
        # The i-th position lies in the i-th of ``take`` equal stretches (integers: no rounding).
        assert all(i * count <= (p - 1) * take < (i + 1) * count for i, p in enumerate(positions))


def test_spread_takes_the_middle_of_each_stretch() -> None:
    assert spread(60, 6) == [6, 16, 26, 36, 46, 56]
    assert spread(5, 1) == [3]
    assert spread(3, 5) == [1, 2, 3]


def test_rfc822_sizes_are_read_by_sequence_number_or_uid() -> None:
    lines = [
        b"1 FETCH (UID 11 RFC822.SIZE 2048)",
        b"2 FETCH (RFC822.SIZE 512 UID 12)",
        b"3 FETCH (FLAGS (\\Seen))",  # an unsolicited update: no size
        b"garbage",
        b"OK Fetch completed.",
    ]
    assert response.parse_sizes(lines, by_uid=False) == {1: 2048, 2: 512}
    assert response.parse_sizes(lines, by_uid=True) == {11: 2048, 12: 512}


# --- the estimates ---------------------------------------------------------------------------------


def test_a_single_migration_estimate_says_its_basis() -> None:
    before = estimate_migration(None, Throughput())
    assert before.as_dict()["basis"] == {
        "messages": "default",
        "size": "default",
        "throughput": "default",
        "jobs_measured": 0,
    }
    assert (before.messages, before.bytes, before.seconds) == (5000, 5000 * 75_000, 30 + 500)
    throughput = Throughput(jobs=3, messages=600, bytes=1, transfer_ms=20_000, overhead_ms=3_000)
    after = estimate_migration(SourceSize(450, 9_000_000, "sampled"), throughput).as_dict()
    assert after["basis"] == {
        "messages": "counted",
        "size": "sampled",
        "throughput": "measured",
        "jobs_measured": 3,
    }
    assert (after["messages"], after["bytes"], after["estimated_seconds"]) == (
        450,
        9_000_000,
        math.ceil(1 + 15),
    )
    assert (after["messages_per_second"], after["per_job_overhead_seconds"], after["human"]) == (
        30.0,
        1.0,
        "less than a minute",
    )


@pytest.mark.parametrize(
    ("valid", "sources", "want"),
    [
        (3, {}, ("default", "default")),
        (2, {1: SourceSize(10, 1000, "counted"), 2: SourceSize(30, 3000, "counted")}, ("counted", "counted")),
        (3, {1: SourceSize(10, 1000, "counted")}, ("sampled", "sampled")),
        (1, {1: SourceSize(10, 750_000, "default")}, ("counted", "default")),
        (2, {1: SourceSize(10, 1000, "counted"), 2: SourceSize(30, 3000, "sampled")}, ("counted", "sampled")),
    ],
)
def test_a_batch_basis_says_how_much_was_probed(
    valid: int, sources: dict[int, SourceSize], want: tuple[str, str]
) -> None:
    assumptions, basis = measured(valid, sources, Throughput())
    assert (basis.messages, basis.size, basis.throughput, basis.jobs_measured) == (*want, "default", 0)
    if sources:
        assert assumptions.average_mailbox_messages == round(
            sum(s.messages for s in sources.values()) / len(sources)
        )


def test_a_preview_uses_the_probed_rows_and_extrapolates_the_others() -> None:
    data = "a@gmail.com,pw1,alice@acme.com\nb@gmail.com,pw2,bob@acme.com\nbad,pw,alice@acme.com"
    throughput = Throughput(jobs=2, messages=1000, bytes=1, transfer_ms=100_000, overhead_ms=20_000)
    result = preview(
        data,
        request=ServerRequest(provider="gmail"),
        limits=BatchLimits(300, 1, 20),
        resolve_preset=fake_resolve,
        mailbox_id_for=MAILBOXES.get,
        destination_busy=frozenset[str]().__contains__,
        available_storage_bytes=10**9,
        throughput=throughput,
        sources={1: SourceSize(200, 4_000_000, "sampled", 50)},
    ).as_dict()
    estimate = result["time_estimate"]
    assert estimate["basis"] == {
        "messages": "sampled",
        "size": "sampled",
        "throughput": "measured",
        "jobs_measured": 2,
    }
    assert (estimate["messages"], estimate["rows_assumed"]) == (400, 1)  # row 2 taken as row 1's size
    assert estimate["assumptions"] == {
        "average_mailbox_messages": 200,
        "average_message_bytes": 20_000,
        "messages_per_second": 10.0,
        "per_job_overhead_seconds": 10.0,
    }
    assert estimate["estimated_seconds"] == 2 * (10 + 20)  # one at a time
    assert result["storage"]["estimated_bytes"] == 4_000_000 + 200 * 20_000
    assert result["storage"]["basis"] == estimate["basis"]
    assert result["rows"][0]["source_size"] == {
        "messages": 200,
        "bytes": 4_000_000,
        "size_basis": "sampled",
        "sampled_messages": 50,
    }
    assert result["rows"][1]["source_size"] is None

"""Ids sort by time and are unguessable; timestamps have one shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from mailroom import clock, ids


def test_ids_are_prefixed_and_recognised() -> None:
    value = ids.new_id("tok")
    assert value.startswith("tok_") and len(value) == 30
    assert ids.is_id(value, "tok")
    assert not ids.is_id(value, "org")
    assert not ids.is_id("tok_not-a-ulid", "tok")


def test_ulids_sort_by_time() -> None:
    earlier = ids.ulid(1_700_000_000_000)
    later = ids.ulid(1_700_000_000_001)
    assert earlier < later


def test_ulid_bounds_enclose_every_id_of_the_millisecond() -> None:
    ms = 1_700_000_000_123
    low, high = ids.ulid_bound(ms, upper=False), ids.ulid_bound(ms, upper=True)
    for _ in range(50):
        assert low <= ids.ulid(ms) <= high
    assert high < ids.ulid_bound(ms + 1, upper=False)


def test_isoformat_is_utc_with_milliseconds() -> None:
    moment = datetime(2025, 1, 15, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert clock.isoformat(moment) == "2025-01-15T10:30:00.123Z"


def test_parse_iso_accepts_z_and_naive() -> None:
    assert clock.parse_iso("2025-01-15T10:30:00Z") == datetime(2025, 1, 15, 10, 30, tzinfo=UTC)
    assert clock.parse_iso("2025-01-15T10:30:00").tzinfo is UTC

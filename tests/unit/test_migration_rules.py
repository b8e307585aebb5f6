"""Migration rules without I/O: masking, progress, poll hints, batching, the history budget, and how
a step's failure becomes the job's error."""

from __future__ import annotations

import json

import pytest

from mailroom.domain import migrations as rules


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("john.doe@gmail.com", "j***e@gmail.com"),
        ("jane@example.org", "j***e@example.org"),
        ("ab@example.org", "a***@example.org"),
        ("x@example.org", "x***@example.org"),
        ("plainuser", "p***r"),
    ],
)
def test_source_addresses_are_masked(address: str, masked: str) -> None:
    assert rules.mask_email(address) == masked


def test_progress_counts_every_handled_message_and_completion_is_100() -> None:
    assert rules.progress(status="processing", total=1234, imported=556, failed=2, skipped=12) == 46
    assert rules.progress(status="processing", total=10, imported=10, failed=0, skipped=0) == 99
    assert rules.progress(status="pending", total=0, imported=0, failed=0, skipped=0) == 0
    assert rules.progress(status="completed", total=0, imported=0, failed=0, skipped=0) == 100


def test_poll_hints_follow_the_spec() -> None:
    assert [rules.poll_hint(s) for s in rules.STATUSES] == [5, 5, 5, 10, None, None, None]


def test_batches_are_bounded_sorted_and_cover_every_uid() -> None:
    uids = [9, 3, 3, 1, 7, 5, 11, 2]
    cut = rules.batches(uids, 3)
    assert cut == [[1, 2, 3], [5, 7, 9], [11]]
    assert rules.batches([], 3) == []
    assert rules.group_by_bucket([1, 999, 1000, 2500]) == {0: [1, 999], 1: [1000], 2: [2500]}


def test_source_ids_are_stable_per_job_folder_uidvalidity_and_uid() -> None:
    one = rules.source_id("mig_1", "Entw&APw-rfe", 77, 5)
    assert one == rules.source_id("mig_1", "Entw&APw-rfe", 77, 5)
    others = {
        rules.source_id("mig_2", "Entw&APw-rfe", 77, 5),
        rules.source_id("mig_1", "INBOX", 77, 5),
        rules.source_id("mig_1", "Entw&APw-rfe", 78, 5),
        rules.source_id("mig_1", "Entw&APw-rfe", 77, 6),
    }
    assert one not in others and len(others) == 4


def test_the_history_budget_holds_in_the_worst_case() -> None:
    windows = rules.safe_windows(40, 20)
    assert windows == 18
    worst = rules.history_events(
        window_batches=40, windows=windows, retries_per_batch=rules.MAX_RETRIES_PER_BATCH
    )
    assert worst < rules.HISTORY_LIMIT
    assert (
        rules.history_events(window_batches=40, windows=windows + 1, retries_per_batch=9)
        >= rules.HISTORY_LIMIT
    )
    assert rules.safe_windows(3, 2) == 2  # small settings are kept as they are
    assert rules.safe_windows(10_000, 5) == 1


def test_step_failures_become_readable_job_errors() -> None:
    ours = {
        "errorType": "MigrationFailed",
        "errorMessage": rules.error_payload("connection_failed", "Refused.", "auth_failed"),
    }
    assert rules.parse_error("MigrationFailed", json.dumps(ours)) == (
        "connection_failed",
        "Refused.",
        "auth_failed",
    )
    transient = {"errorType": "SourceUnavailable", "errorMessage": "connection_failed/timeout: No answer."}
    assert rules.parse_error("SourceUnavailable", json.dumps(transient)) == (
        "connection_failed",
        "No answer.",
        "timeout",
    )
    bug = {"errorType": "KeyError", "errorMessage": "'x'", "stackTrace": ["secret internals"]}
    code, message, reason = rules.parse_error("KeyError", json.dumps(bug))
    assert (code, reason) == ("internal_error", None) and "KeyError" in message and "internals" not in message
    assert rules.parse_error("States.Timeout", "")[0] == "timeout"

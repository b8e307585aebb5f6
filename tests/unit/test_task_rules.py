"""Task configs' pure rules (domain/tasks.py): EventBridge Scheduler's recurring expressions as
Scheduler accepts and refuses them, and a run's outcome from its counts."""

from __future__ import annotations

import pytest

from mailroom.domain import tasks


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "cron(0 8 * * ? *)",
        "cron(15 10 ? * 6L 2029-2030)",
        "cron(0/15 9-17 ? * MON-FRI *)",
        "cron(0 18 ? * FRI-MON *)",
        "cron(0 10 L * ? *)",
        "cron(0 10 LW * ? *)",
        "cron(0 10 15W * ? *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 12 1,15 JAN,JUL ? *)",
        "  cron(30 2 * * ? *)  ",
    ],
)
def test_scheduler_expressions_are_accepted(expression: str) -> None:
    assert tasks.check_schedule(expression) == expression.strip()


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("rate(0 minutes)", "positive"),
        ("rate(1 minutes)", "'minute' for 1"),
        ("rate(2 hour)", "'hour' for 1"),
        ("rate(5 weeks)", "unit"),
        ("rate(5minutes)", "unit"),
        ("cron(0 8 * * *)", "6 fields"),
        ("cron(0 8 * * MON *)", "exactly one"),
        ("cron(0 8 ? * ? *)", "exactly one"),
        ("cron(60 8 * * ? *)", "0 to 59"),
        ("cron(0 24 * * ? *)", "0 to 23"),
        ("cron(0 8 32 * ? *)", "1 to 31"),
        ("cron(0 8 * 13 ? *)", "1 to 12"),
        ("cron(0 8 ? * 8 *)", "1 to 7"),
        ("cron(0 8 ? * MON#6 *)", "1 to 5"),
        ("cron(0 8 * * ? 2300)", "1970 to 2199"),
        ("cron(0/0 8 * * ? *)", "step"),
        ("cron(30-10 8 * * ? *)", "low to high"),
        ("cron(? 8 * * ? *)", "only for day"),
        ("cron(0 8 * FOO ? *)", "not a value"),
        ("at(2030-01-01T00:00:00)", "repeats"),
        ("every day", "expected rate"),
        ("rate(" + "9" * 300 + " minutes)", "at most"),
        ("rate(\u0663 minutes)", "unit"),
        ("cron(\u00b2 8 * * ? *)", "not a value"),
    ],
)
def test_what_scheduler_would_refuse_is_refused_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(tasks.InvalidSchedule, match=reason.replace("(", r"\(")):
        tasks.check_schedule(expression)


def test_a_run_is_judged_by_its_counts() -> None:
    assert tasks.run_status(matched=0, done=0, failed=0, error=None) == "succeeded"
    assert tasks.run_status(matched=3, done=3, failed=0, error=None) == "succeeded"
    assert tasks.run_status(matched=3, done=2, failed=1, error=None) == "partial"
    assert tasks.run_status(matched=3, done=0, failed=3, error=None) == "failed"
    assert tasks.run_status(matched=3, done=1, failed=0, error="stopped before the time limit") == "partial"
    assert tasks.run_status(matched=0, done=0, failed=0, error="the action no longer exists") == "failed"


def test_a_query_round_trips_through_its_item() -> None:
    query = tasks.Query(folder="INBOX", unread=True, older_than_days=30, from_contains="ann", limit=500)
    assert tasks.Query.of(query.as_item()) == query
    assert tasks.Query.of({}) == tasks.Query()

"""Schedule expressions (rate, cron, at) and the scheduler, on an injected clock."""

from datetime import UTC, datetime, timedelta

import pytest

from local.schedules import (
    At,
    Cron,
    Rate,
    ScheduleExpressionError,
    Scheduler,
    parse_expression,
    scheduled_event,
)
from local.stack import ScheduleSpec


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def spec(
    expression: str, *, enabled: bool = True, input: str | None = None, timezone: str = "UTC"
) -> ScheduleSpec:
    return ScheduleSpec(
        function="Ticker",
        event=expression,
        kind="Schedule",
        expression=expression,
        input=input,
        enabled=enabled,
        timezone=timezone,
        resource_arn="arn:aws:events:us-east-1:123456789012:rule/tick",
    )


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(2 days)", timedelta(days=2)),
    ],
)
def test_rates(text, interval):
    assert parse_expression(text) == Rate(interval)


@pytest.mark.parametrize(
    "text",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "rate(-1 days)",
        "every 5 minutes",
        "cron(0 12 * * * *)",
        "cron(0 12 ? * ? *)",
        "cron(0 12 * *)",
        "cron(0 12 L * ? *)",
        "cron(0 12 ? * 6#3 *)",
        "cron(61 * * * ? *)",
        "cron(0 12 10-5 * ? *)",
        "cron(*/0 * * * ? *)",
    ],
)
def test_invalid_or_unsupported_expressions_are_refused(text):
    with pytest.raises(ScheduleExpressionError):
        parse_expression(text)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("cron(30 2 * * ? *)", utc(2025, 1, 15, 1, 0), utc(2025, 1, 15, 2, 30)),
        ("cron(30 2 * * ? *)", utc(2025, 1, 15, 2, 30), utc(2025, 1, 16, 2, 30)),  # strictly after
        ("cron(0/15 * * * ? *)", utc(2025, 1, 15, 10, 16, 59), utc(2025, 1, 15, 10, 30)),
        ("cron(*/10 9-17 ? * MON-FRI *)", utc(2025, 1, 17, 17, 55), utc(2025, 1, 20, 9, 0)),  # Fri → Mon
        ("cron(0 8 ? * 1 *)", utc(2025, 1, 15, 0, 0), utc(2025, 1, 19, 8, 0)),  # 1 = Sunday
        ("cron(0 0 1,15 * ? *)", utc(2025, 1, 2, 0, 0), utc(2025, 1, 15, 0, 0)),
        ("cron(0 0 31 JAN,MAR ? *)", utc(2025, 2, 1), utc(2025, 3, 31)),
        ("cron(10-30/10 12 1 1 ? 2027)", utc(2025, 6, 1), utc(2027, 1, 1, 12, 10)),
        ("cron(0 0 1 1 ? 2024)", utc(2025, 1, 1), None),  # only in the past
    ],
)
def test_cron_next_run(text, after, expected):
    assert parse_expression(text).next_after(after) == expected


def test_cron_in_a_time_zone():
    cron = parse_expression("cron(0 9 * * ? *)", timezone="Europe/Paris")
    assert isinstance(cron, Cron)
    assert cron.next_after(utc(2025, 1, 15, 0, 0)) == utc(2025, 1, 15, 8, 0)  # 09:00 CET
    assert cron.next_after(utc(2025, 7, 15, 0, 0)) == utc(2025, 7, 15, 7, 0)  # 09:00 CEST


def test_at_is_one_off():
    at = parse_expression("at(2030-01-01T10:00:00)")
    assert at == At(utc(2030, 1, 1, 10, 0))
    assert at.next_after(utc(2029, 1, 1)) == utc(2030, 1, 1, 10, 0)
    assert at.next_after(utc(2030, 1, 1, 10, 0)) is None


def test_scheduler_fires_when_due_and_coalesces_missed_runs():
    fired: list[tuple[str, datetime]] = []
    start = utc(2025, 1, 15, 10, 0)
    scheduler = Scheduler(
        [spec("rate(5 minutes)"), spec("cron(30 10 * * ? *)"), spec("rate(1 minute)", enabled=False)],
        lambda s, at: fired.append((s.expression, at)),
        clock=lambda: start,
    )
    assert scheduler.next_due() == utc(2025, 1, 15, 10, 5)
    assert scheduler.run_due(utc(2025, 1, 15, 10, 4, 59)) == []
    scheduler.run_due(utc(2025, 1, 15, 10, 5))
    assert fired == [("rate(5 minutes)", utc(2025, 1, 15, 10, 5))]
    # The machine slept for 40 minutes: each schedule fires once, then continues from now.
    scheduler.run_due(utc(2025, 1, 15, 10, 47))
    assert fired[1:] == [
        ("rate(5 minutes)", utc(2025, 1, 15, 10, 10)),
        ("cron(30 10 * * ? *)", utc(2025, 1, 15, 10, 30)),
    ]
    assert scheduler.next_due() == utc(2025, 1, 15, 10, 50)
    assert all(expression != "rate(1 minute)" for expression, _ in fired)


def test_scheduler_refuses_bad_expressions_at_start():
    with pytest.raises(ScheduleExpressionError):
        Scheduler([spec("rate(1 minutes)")], lambda s, at: None)


def test_scheduled_event_shape_and_input():
    event = scheduled_event(
        spec("rate(5 minutes)"), utc(2025, 1, 15, 10, 5), region="eu-west-1", account_id="123456789012"
    )
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == "123456789012"
    assert event["region"] == "eu-west-1"
    assert event["time"] == "2025-01-15T10:05:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/tick"]
    assert event["detail"] == {}
    assert event["id"]
    assert scheduled_event(
        spec("rate(5 minutes)", input='{"job": 1}'), utc(2025, 1, 1), region="r", account_id="a"
    ) == {"job": 1}

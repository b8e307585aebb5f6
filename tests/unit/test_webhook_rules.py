"""Retry schedule math, Retry-After, the five-day rule, URL syntax, payloads and subscriptions."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from mailroom.domain import webhooks as rules

SCHEDULE = rules.DEFAULT_RETRY_SCHEDULE


def test_the_default_schedule_is_standard_webhooks():
    assert SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert rules.max_attempts(SCHEDULE) == 10
    assert sum(SCHEDULE) == 75 * 3600 + 35 * 60 + 5  # the spec's 75:35:05 from the first attempt


@pytest.mark.parametrize(("made", "base"), list(enumerate(SCHEDULE, start=1)))
def test_each_retry_waits_its_step_plus_at_most_ten_percent(made, base):
    rng = random.Random(made)
    for _ in range(20):
        delay = rules.retry_delay(SCHEDULE, made, rng=rng)
        assert delay is not None and base <= delay <= base * 1.1


def test_after_the_last_attempt_there_is_none():
    assert rules.retry_delay(SCHEDULE, 10) is None
    assert rules.retry_delay((1, 2), 3) is None
    assert rules.retry_delay((1, 2), 2) is not None
    assert rules.retry_delay(SCHEDULE, 0) == 0.0


def test_retry_after_lengthens_but_is_capped_at_a_day():
    rng = random.Random(0)
    assert rules.retry_delay(SCHEDULE, 1, retry_after=60, rng=rng) == 60
    assert rules.retry_delay(SCHEDULE, 1, retry_after=10 * 86400, rng=rng) == 86400
    assert rules.retry_delay((1, 1), 1, retry_after=120, rng=rng) == 120  # whatever the schedule
    shorter = rules.retry_delay(SCHEDULE, 3, retry_after=1, rng=rng)
    assert shorter is not None and shorter >= 1800  # never shortens the schedule


def test_retry_after_header_forms():
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert rules.parse_retry_after("120") == 120
    assert rules.parse_retry_after(format_datetime(now + timedelta(minutes=2), usegmt=True), now=now) == 120
    assert rules.parse_retry_after(format_datetime(now - timedelta(minutes=2), usegmt=True), now=now) == 0
    assert rules.parse_retry_after("soon") is None
    assert rules.parse_retry_after(None) is None
    assert rules.parse_retry_after("-5") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, SCHEDULE), ("", SCHEDULE), ("1,2,3", (1, 2, 3)), (" 0 , 1 ", (0, 1))],
)
def test_schedule_setting(raw, expected):
    assert rules.parse_schedule(raw) == expected


@pytest.mark.parametrize("raw", ["a,b", "1,-1", ",", "1.5"])
def test_bad_schedule_settings(raw):
    with pytest.raises(ValueError, match="retry schedule"):
        rules.parse_schedule(raw)


def test_five_days_of_failure_disable():
    start = 1_700_000_000
    assert not rules.should_disable(None, start)
    assert not rules.should_disable(start, start + 5 * 86400 - 1)
    assert rules.should_disable(start, start + 5 * 86400)


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://example.com/hook", "example.com", 443),
        ("https://EXAMPLE.com:8443/a?b=c", "example.com", 8443),
        ("https://bücher.example/x", "xn--bcher-kva.example", 443),
        ("https://[2606:4700::1]/x", "2606:4700::1", 443),
    ],
)
def test_good_urls(url, host, port):
    parsed = rules.parse_url(url)
    assert (parsed.host, parsed.port) == (host, port)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https://example.com/#frag",
        "https:///nohost",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2100,
        "javascript:alert(1)",
    ],
)
def test_bad_urls(url):
    with pytest.raises(rules.InvalidWebhookUrl):
        rules.parse_url(url)


def test_http_only_when_allowed():
    assert rules.parse_url("http://127.0.0.1:8080/h", allow_http=True).port == 8080


def test_payload_shape_and_large_bodies():
    event = {
        "event_id": "evt_1",
        "event_type": "message.received",
        "created_at": "2025-01-01T00:00:00.000Z",
        "data": {"message_id": "msg_1", "preview": "hi", "text": "hi", "links": {"self": "/m/1"}},
        "org_id": "org_1",
        "ttl": 1,
    }
    small = rules.payload(event)
    assert small == {
        "type": "event",
        "event_id": "evt_1",
        "event_type": "message.received",
        "created_at": "2025-01-01T00:00:00.000Z",
        "data": event["data"],
    }
    big = rules.payload({**event, "data": {**event["data"], "text": "x" * 40_000, "html": "y" * 40_000}})
    assert "text" not in big["data"] and "html" not in big["data"]
    assert big["data"]["body_omitted"] is True
    assert big["data"]["preview"] == "hi" and big["data"]["links"] == {"self": "/m/1"}
    other = rules.payload({**event, "event_type": "domain.verified", "data": {"text": "x" * 70_000}})
    assert len(other["data"]["text"]) == 70_000  # only message bodies are left out


@pytest.mark.parametrize(
    ("webhook", "event_type", "data", "expected"),
    [
        ({"event_types": ["message.received"]}, "message.received", {}, True),
        ({"event_types": ["message.received"]}, "message.sent", {}, False),
        (
            {"event_types": ["message.received"], "mailbox_ids": ["mbx_a"]},
            "message.received",
            {"mailbox_id": "mbx_a"},
            True,
        ),
        (
            {"event_types": ["message.received"], "mailbox_ids": ["mbx_a"]},
            "message.received",
            {"mailbox_id": "mbx_b"},
            False,
        ),
        (
            {"event_types": ["message.received"], "mailbox_ids": ["mbx_a"]},
            "message.received",
            {"inbox_id": "mbx_a"},
            True,
        ),
        (
            {"event_types": ["domain.verified"], "mailbox_ids": ["mbx_a"]},
            "domain.verified",
            {"id": "dom_1"},
            True,
        ),
    ],
)
def test_subscriptions(webhook, event_type, data, expected):
    assert rules.matches(webhook, event_type, data) is expected

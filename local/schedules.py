"""Schedule expressions and the scheduler that fires function events of type Schedule/ScheduleV2.

Supported expressions (as EventBridge spells them):

* ``rate(N unit)``: unit ``minute``/``hour``/``day`` for N = 1, ``minutes``/``hours``/``days`` above.
  The first run is one interval after the stack starts.
* ``cron(minutes hours day-of-month month day-of-week year)``: each field takes ``*``, numbers,
  lists (``1,15``), ranges (``1-5``), steps (``*/10``, ``5/15``, ``10-30/5``), month names
  ``JAN``-``DEC`` and day names ``SUN``-``SAT`` (day-of-week 1-7 is SUN-SAT); one of day-of-month
  and day-of-week must be ``?``. ``L``, ``W`` and ``#`` are not supported (a clear error says so).
* ``at(yyyy-mm-ddThh:mm:ss)`` (EventBridge Scheduler one-off), in the schedule's time zone.

A missed run (the machine slept) fires once, not once per missed period, as EventBridge does not
backfill either. The clock is injectable: ``Scheduler.run_due(now)`` is what the thread calls.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from local.stack import ScheduleSpec

log = logging.getLogger(__name__)

_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


class ScheduleExpressionError(ValueError):
    """An expression EventBridge would reject, or one the local scheduler does not support."""


@dataclass(frozen=True, slots=True)
class Rate:
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


@dataclass(frozen=True, slots=True)
class At:
    moment: datetime  # aware

    def next_after(self, moment: datetime) -> datetime | None:
        return self.moment if self.moment > moment else None


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?"
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = Sunday
    years: frozenset[int]
    timezone: str = "UTC"

    def _day_matches(self, moment: datetime) -> bool:
        if self.days_of_month is not None:
            return moment.day in self.days_of_month
        aws_weekday = (moment.weekday() + 1) % 7 + 1  # Python: Monday 0; AWS: Sunday 1
        return self.days_of_week is not None and aws_weekday in self.days_of_week

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching minute strictly after ``moment`` (aware), or None if there is none."""
        zone = ZoneInfo(self.timezone)
        t = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        last_year = max(self.years)
        while t.year <= last_year:
            if t.year not in self.years:
                t = datetime(t.year + 1, 1, 1)
            elif t.month not in self.months:
                t = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1)
            elif not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = datetime(t.year, t.month, t.day, t.hour) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t.replace(tzinfo=zone).astimezone(UTC)
        return None


Expression = Rate | Cron | At


def parse_expression(text: str, *, timezone: str = "UTC") -> Expression:
    text = text.strip()
    rate = _RATE_RE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ScheduleExpressionError(f"{text}: the rate must be a positive whole number")
        singular = unit.rstrip("s")
        if (value == 1) != (unit == singular):
            raise ScheduleExpressionError(f"{text}: use '{singular}' for 1 and '{singular}s' for more")
        return Rate(_UNITS[singular] * value)
    if text.startswith("cron(") and text.endswith(")"):
        return _parse_cron(text[5:-1], text, timezone)
    if text.startswith("at(") and text.endswith(")"):
        try:
            moment = datetime.fromisoformat(text[3:-1])
        except ValueError as exc:
            raise ScheduleExpressionError(f"{text}: expected at(yyyy-mm-ddThh:mm:ss)") from exc
        return At(moment.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC))
    raise ScheduleExpressionError(f"{text}: expected rate(...), cron(...) or at(...)")


def _parse_cron(body: str, text: str, timezone: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{text}: a cron expression has 6 fields (minutes hours day-of-month month day-of-week year)"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
    return Cron(
        minutes=_field(minute, 0, 59, text),
        hours=_field(hour, 0, 23, text),
        days_of_month=None if dom == "?" else _field(dom, 1, 31, text),
        months=_field(month, 1, 12, text, _MONTHS),
        days_of_week=None if dow == "?" else _field(dow, 1, 7, text, _DAYS),
        years=_field(year, 1970, 2199, text),
        timezone=timezone,
    )


def _field(spec: str, low: int, high: int, text: str, names: dict[str, int] | None = None) -> frozenset[int]:
    def value(token: str) -> int:
        token = token.upper()
        if names and token in names:
            return names[token]
        if not token.isdigit():
            raise ScheduleExpressionError(
                f"{text}: {token!r} is not supported by the local scheduler (no L, W or #)"
                if any(c in token for c in "LW#")
                else f"{text}: {token!r} is not a valid value"
            )
        return int(token)

    values: set[int] = set()
    for part in spec.split(","):
        base, _, step_text = part.partition("/")
        step = value(step_text) if step_text else 1
        if step < 1:
            raise ScheduleExpressionError(f"{text}: step must be at least 1")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = value(first), value(last)
        else:
            start = value(base)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ScheduleExpressionError(f"{text}: {part!r} is outside {low}-{high} (or a reversed range)")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def scheduled_event(spec: ScheduleSpec, moment: datetime, *, region: str, account_id: str) -> Any:
    """What EventBridge sends the function: the schedule's ``Input`` if it has one (EventBridge
    Scheduler's context attribute ``<aws.scheduler.scheduled-time>`` filled in), else a Scheduled Event."""
    if spec.input is not None:
        scheduled_time = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return json.loads(spec.input.replace("<aws.scheduler.scheduled-time>", scheduled_time))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [spec.resource_arn],
        "detail": {},
    }


@dataclass
class _Entry:
    spec: ScheduleSpec
    expression: Expression
    next_at: datetime | None


class Scheduler:
    """Fires each enabled schedule when due; ``fire(spec, scheduled_time)`` must not block long."""

    def __init__(
        self,
        schedules: Sequence[ScheduleSpec],
        fire: Callable[[ScheduleSpec, datetime], None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fire = fire
        self._clock = clock
        now = clock()
        self._entries = []
        for spec in schedules:
            expression = parse_expression(spec.expression, timezone=spec.timezone)  # bad ones fail at start
            if not spec.enabled:
                log.info("schedule %s.%s is disabled", spec.function, spec.event)
                continue
            self._entries.append(_Entry(spec, expression, expression.next_after(now)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def next_due(self) -> datetime | None:
        pending = [e.next_at for e in self._entries if e.next_at is not None]
        return min(pending) if pending else None

    def run_due(self, now: datetime) -> list[tuple[ScheduleSpec, datetime]]:
        """Fire every schedule due at ``now``; returns what fired (schedule, scheduled time)."""
        fired = []
        for entry in self._entries:
            if entry.next_at is None or entry.next_at > now:
                continue
            scheduled = entry.next_at
            try:
                self._fire(entry.spec, scheduled)
            except Exception:
                log.exception("schedule %s.%s could not fire", entry.spec.function, entry.spec.event)
            fired.append((entry.spec, scheduled))
            following = entry.expression.next_after(scheduled)
            while following is not None and following <= now:  # missed runs coalesce into this one
                following = entry.expression.next_after(following)
            entry.next_at = following
        return fired

    def start(self) -> None:
        if self._entries:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due(self._clock())
            due = self.next_due()
            if due is None:
                return
            wait = (due - self._clock()).total_seconds()
            self._stop.wait(min(max(wait, 0.05), 60.0))

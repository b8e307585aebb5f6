"""EventBridge Scheduler schedules that functions create at run time (one-off ``at(...)``
schedules, as a scheduled send makes; recurring ``rate(...)``/``cron(...)`` ones, as a task config
makes), fired at their time like the real service does.

The template's own schedules are ``local.schedules.Scheduler``'s; these live in moto, so they are
read from it: every ``interval`` seconds the schedules of every group are listed (a schedule's
definition is read once, then cached by name and modification time), and each enabled schedule
whose time has come is fired: its target function is invoked asynchronously with the target's
``Input`` (``<aws.scheduler.scheduled-time>`` filled in; retried as Lambda retries, as the real
service does). A one-off schedule is then deleted when its ``ActionAfterCompletion`` says so, else
remembered as fired.

A recurring schedule first fires when it is first seen after it was created or changed (``rate``:
at once, as Scheduler starts a rate schedule without a ``StartDate``; ``cron``: at the next
matching minute in its time zone), then at each following due time; missed firings (the stack was
down) coalesce into one, as EventBridge does not backfill either. ``rate_minute_seconds`` is how
many real seconds a minute of a ``rate(...)`` lasts (60; ``MAILROOM_LOCAL_RATE_MINUTE_SECONDS``:
the e2e tests set a few, so ``rate(1 minute)`` fires within the test).

Schedules survive a restart in the state snapshot (local/persistence.py); one that came due while
the stack was down fires on the first pass after the start, as EventBridge delivers a late one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.schedules import At, Expression, Rate, ScheduleExpressionError, parse_expression

log = logging.getLogger(__name__)

Fire = Callable[[str, Any], None]  # (target ARN, the event)
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@dataclass
class _Recurring:
    expression: Expression
    next_at: datetime | None


class OneOffSchedules:
    def __init__(
        self,
        scheduler: Any,
        fire: Fire,
        *,
        interval: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rate_minute_seconds: float = 60.0,
    ) -> None:
        self._scheduler = scheduler
        self._rate_scale = rate_minute_seconds / 60.0
        self._recurring: dict[tuple[str, str, Any], _Recurring] = {}
        self._fire = fire
        self._interval = interval
        self._clock = clock
        self._definitions: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        self._fired: set[tuple[str, str, Any]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="one-off schedules", daemon=True)

    def run_due(self, now: datetime) -> list[str]:
        """Fire every enabled one-off schedule due at ``now``; the names of those fired."""
        fired = []
        listed = self._listed()
        present = {(group, summary["Name"], summary.get("LastModificationDate")) for group, summary in listed}
        for gone in [v for v in self._recurring if v not in present]:
            del self._recurring[gone]
        for group, summary in listed:
            key = (group, summary["Name"])
            if (
                summary.get("State") != "ENABLED"
                or (*key, summary.get("LastModificationDate")) in self._fired
            ):
                continue
            schedule = self._definition(group, summary)
            try:
                expression = parse_expression(
                    schedule["ScheduleExpression"],
                    timezone=schedule.get("ScheduleExpressionTimezone") or "UTC",
                )
            except ScheduleExpressionError:
                log.warning("schedule %s/%s: %s is not fired here", *key, schedule["ScheduleExpression"])
                self._fired.add((*key, summary.get("LastModificationDate")))
                continue
            if not isinstance(expression, At):
                if self._recurring_due(key, summary, schedule, expression, now):
                    fired.append(summary["Name"])
                continue
            if expression.moment > now:
                continue
            self._fire_target(key, schedule, expression.moment)
            fired.append(summary["Name"])
            if schedule.get("ActionAfterCompletion") == "DELETE":
                # Deleted meanwhile (a cancel) is fine too.
                with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                    self._scheduler.delete_schedule(Name=summary["Name"], GroupName=group)
                self._definitions.pop(key, None)
            else:
                self._fired.add((*key, summary.get("LastModificationDate")))
        return fired

    def _recurring_due(
        self,
        key: tuple[str, str],
        summary: dict[str, Any],
        schedule: dict[str, Any],
        expression: Expression,
        now: datetime,
    ) -> bool:
        """Fire a rate/cron schedule when due; its state is per definition (a change starts afresh)."""
        version = (*key, summary.get("LastModificationDate"))
        state = self._recurring.get(version)
        if state is None:
            for stale in [v for v in self._recurring if v[:2] == key]:
                del self._recurring[stale]
            # Scheduler starts a rate schedule without a StartDate at once; cron at its next minute.
            first = now if isinstance(expression, Rate) else expression.next_after(now)
            state = self._recurring[version] = _Recurring(expression, first)
        if state.next_at is None or state.next_at > now:
            return False
        scheduled = state.next_at
        self._fire_target(key, schedule, scheduled)
        following = self._next(expression, scheduled)
        while following is not None and following <= now:  # missed firings coalesce into this one
            following = self._next(expression, following)
        state.next_at = following
        return True

    def _next(self, expression: Expression, after: datetime) -> datetime | None:
        if isinstance(expression, Rate):
            return after + timedelta(seconds=expression.interval.total_seconds() * self._rate_scale)
        return expression.next_after(after)

    def _fire_target(self, key: tuple[str, str], schedule: dict[str, Any], scheduled: datetime) -> None:
        target = schedule["Target"]
        log.info("schedule %s/%s fired (%s)", *key, schedule["ScheduleExpression"])
        text = (target.get("Input") or "{}").replace(
            SCHEDULED_TIME, scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        try:
            self._fire(target["Arn"], json.loads(text))
        except Exception:
            log.exception("schedule %s/%s could not fire", *key)

    def _listed(self) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        for group in self._scheduler.list_schedule_groups().get("ScheduleGroups", []):
            for page in self._scheduler.get_paginator("list_schedules").paginate(GroupName=group["Name"]):
                found.extend((group["Name"], summary) for summary in page.get("Schedules", []))
        return found

    def _definition(self, group: str, summary: dict[str, Any]) -> dict[str, Any]:
        key, modified = (group, summary["Name"]), summary.get("LastModificationDate")
        cached = self._definitions.get(key)
        if cached is None or cached[0] != modified:
            cached = (modified, self._scheduler.get_schedule(GroupName=group, Name=summary["Name"]))
            self._definitions[key] = cached
        return cached[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due(self._clock())
            except Exception:
                log.exception("reading the one-off schedules failed")
            self._stop.wait(self._interval)

"""EventBridge Scheduler schedules that functions create at run time (one-off ``at(...)``
schedules, as a scheduled send makes), fired at their time like the real service does.

The template's own schedules are ``local.schedules.Scheduler``'s; these live in moto, so they are
read from it: every ``interval`` seconds the schedules of every group are listed (a schedule's
definition is read once, then cached by name and modification time), and each enabled ``at(...)``
schedule whose time has come is fired: its target function is invoked asynchronously with the
target's ``Input`` (retried as Lambda retries, as the real service does), then the schedule is
deleted when its ``ActionAfterCompletion`` says so, else remembered as fired.

Schedules survive a restart in the state snapshot (local/persistence.py); one that came due while
the stack was down fires on the first pass after the start, as EventBridge delivers a late one.
``rate``/``cron`` schedules made at run time are not fired (nothing in Mailroom makes them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.schedules import At, ScheduleExpressionError, parse_expression

log = logging.getLogger(__name__)

Fire = Callable[[str, Any], None]  # (target ARN, the event)


class OneOffSchedules:
    def __init__(
        self,
        scheduler: Any,
        fire: Fire,
        *,
        interval: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._scheduler = scheduler
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
        for group, summary in self._listed():
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
            if not isinstance(expression, At) or expression.moment > now:
                continue
            target = schedule["Target"]
            log.info("schedule %s/%s fired (%s)", *key, schedule["ScheduleExpression"])
            try:
                self._fire(target["Arn"], json.loads(target.get("Input") or "{}"))
            except Exception:
                log.exception("schedule %s/%s could not fire", *key)
            fired.append(summary["Name"])
            if schedule.get("ActionAfterCompletion") == "DELETE":
                # Deleted meanwhile (a cancel) is fine too.
                with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                    self._scheduler.delete_schedule(Name=summary["Name"], GroupName=group)
                self._definitions.pop(key, None)
            else:
                self._fired.add((*key, summary.get("LastModificationDate")))
        return fired

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

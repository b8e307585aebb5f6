"""Task configs, the pure part (docs/automation-tasks.md): what a schedule expression may be (EventBridge
Scheduler's ``rate(...)`` and ``cron(...)`` syntax, checked here so a mistake is a 422 with a reason
rather than Scheduler's ValidationException), the query a run selects messages with, which action
types a task can run, and what a run records. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

MAX_TASKS = 100  # per organization, on the automation HEAD item's task_count
MAX_QUERY_LIMIT = 1000
DEFAULT_QUERY_LIMIT = 100
MAX_OLDER_THAN_DAYS = 3650
MAX_CONTAINS_CHARS = 200
MAX_NAME_CHARS = 200
MAX_EXPRESSION_CHARS = 256
RUN_RETENTION_DAYS = 30
# At most this many failed messages are named on a run (the counts are always exact).
MAX_RUN_FAILURES = 20
# A digest entry on EventBridge carries at most this many messages (and a PutEvents call at most
# ten entries: EventBridge's own limit).
EVENTBRIDGE_MESSAGES_PER_ENTRY = 10
EVENTBRIDGE_ENTRIES_PER_CALL = 10
DEFAULT_DETAIL_TYPE = "Mailroom Automation"

TASK_ACTION_TYPES: tuple[str, ...] = ("webhook", "eventbridge", "move", "label", "delete")
Trigger = Literal["schedule", "manual"]
RunStatus = Literal["queued", "running", "succeeded", "partial", "failed", "skipped"]
FINISHED: frozenset[str] = frozenset({"succeeded", "partial", "failed", "skipped"})


class InvalidSchedule(ValueError):
    """An expression EventBridge Scheduler would refuse (the message says why)."""


# --- schedule expressions ------------------------------------------------------------------------

_RATE = re.compile(r"rate\((\d{1,9}) (minute|minutes|hour|hours|day|days)\)", re.ASCII)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    special: str = ""  # what else the field takes: ? L W #


_CRON_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31, special="?LW"),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 1, 7, _DAYS, special="?L#"),
    _Field("year", 1970, 2199),
)


def check_schedule(raw: str) -> str:
    """The expression as Scheduler takes it (surrounding blanks dropped); InvalidSchedule if not.

    ``rate(value unit)``: a positive whole number and ``minute``/``hour``/``day`` for 1, the plural
    above. ``cron(minutes hours day-of-month month day-of-week year)``: ``*``, values, lists, ranges,
    steps, month and day names, ``L``, ``W`` and ``#`` where Scheduler accepts them, and exactly one
    of day-of-month and day-of-week ``?``. One-off ``at(...)`` is not a task's schedule.
    """
    text = raw.strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise InvalidSchedule(f"a schedule expression is at most {MAX_EXPRESSION_CHARS} characters")
    if text.startswith("rate("):
        match = _RATE.fullmatch(text)
        if match is None:
            raise InvalidSchedule(
                f"{text}: expected rate(<value> <unit>) with unit minute(s), hour(s) or day(s)"
            )
        value, unit = int(match.group(1)), match.group(2)
        if value < 1:
            raise InvalidSchedule(f"{text}: the value must be a positive whole number")
        singular = unit.removesuffix("s")
        if (value == 1) != (unit == singular):
            raise InvalidSchedule(f"{text}: use '{singular}' for 1 and '{singular}s' above")
        return text
    if text.startswith("cron(") and text.endswith(")"):
        _check_cron(text)
        return text
    if text.startswith("at("):
        raise InvalidSchedule("a task repeats: use rate(...) or cron(...), not a one-off at(...)")
    raise InvalidSchedule(f"{text[:64]}: expected rate(...) or cron(...)")


def _check_cron(text: str) -> None:
    fields = text[5:-1].split()
    if len(fields) != len(_CRON_FIELDS):
        raise InvalidSchedule(
            f"{text}: a cron expression has 6 fields (minutes hours day-of-month month day-of-week year)"
        )
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise InvalidSchedule(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
    for spec, field in zip(fields, _CRON_FIELDS, strict=True):
        _check_field(text, spec, field)


def _check_field(text: str, spec: str, field: _Field) -> None:
    where = f"{text}: {field.name} {spec!r}"
    if spec == "?":
        if "?" not in field.special:
            raise InvalidSchedule(f"{where}: '?' is only for day-of-month or day-of-week")
        return
    upper = spec.upper()
    if "L" in field.special and upper in ("L", "LW") and (upper == "L" or "W" in field.special):
        return
    if field.name == "day-of-month" and upper.endswith("W") and _digits(upper[:-1]):
        _value(where, upper[:-1], field)
        return
    if field.name == "day-of-week":
        if "#" in upper:
            day, _, nth = upper.partition("#")
            _value(where, day, field)
            if nth not in ("1", "2", "3", "4", "5"):
                raise InvalidSchedule(f"{where}: the week after '#' is 1 to 5")
            return
        if upper.endswith("L") and len(upper) > 1:
            _value(where, upper[:-1], field)
            return
    for part in upper.split(","):
        base, slash, step = part.partition("/")
        if slash and not (_digits(step) and int(step) >= 1):
            raise InvalidSchedule(f"{where}: a step is a positive whole number")
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        low = _value(where, first, field)
        if dash and _value(where, last, field) < low and field.name != "day-of-week":
            raise InvalidSchedule(f"{where}: a range runs from low to high")


def _digits(token: str) -> bool:
    # ASCII only: str.isdigit() is true of "²", which int() refuses.
    return token.isascii() and token.isdigit()


def _value(where: str, token: str, field: _Field) -> int:
    if token in field.names:
        return field.names.index(token) + 1
    if not _digits(token):
        raise InvalidSchedule(f"{where}: {token!r} is not a value of {field.name}")
    value = int(token)
    if not field.low <= value <= field.high:
        raise InvalidSchedule(f"{where}: {field.name} runs from {field.low} to {field.high}")
    return value


# --- the query --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """Which messages a run acts on: all given conditions hold; newest first, at most ``limit``."""

    folder: str | None = None  # a folder path or key; None: every folder
    unread: bool | None = None
    older_than_days: int | None = None  # received at least this many days before the run
    from_contains: str | None = None
    subject_contains: str | None = None
    limit: int = DEFAULT_QUERY_LIMIT

    def as_item(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "unread": self.unread,
            "older_than_days": self.older_than_days,
            "from_contains": self.from_contains,
            "subject_contains": self.subject_contains,
            "limit": self.limit,
        }

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Query:
        return cls(
            folder=stored.get("folder"),
            unread=stored.get("unread"),
            older_than_days=stored.get("older_than_days"),
            from_contains=stored.get("from_contains"),
            subject_contains=stored.get("subject_contains"),
            limit=int(stored.get("limit") or DEFAULT_QUERY_LIMIT),
        )

    def received_before(self, now: datetime) -> datetime | None:
        return None if self.older_than_days is None else now - timedelta(days=self.older_than_days)


# --- what a run sends -------------------------------------------------------------------------------


def message_entry(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as a digest lists it: the template context's message fields a listing has (its
    ``preview`` instead of ``text``: a digest reads no bodies)."""
    return {
        "id": message["id"],
        "message_id": message.get("rfc_message_id"),
        "from": message.get("from"),
        "to": list(message.get("to") or []),
        "cc": list(message.get("cc") or []),
        "subject": message.get("subject", ""),
        "preview": message.get("preview", ""),
        "received_at": message["received_at"],
        "has_attachments": bool(message.get("has_attachments")),
        "size": int(message.get("size", 0)),
    }


def digest(
    *,
    task: Mapping[str, Any],
    run_id: str,
    mailbox: Mapping[str, Any],
    action: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    created_at: str,
) -> dict[str, Any]:
    """The default JSON body of a task's webhook digest (and the context a ``body_template`` gets)."""
    return {
        "type": "task.digest",
        "created_at": created_at,
        "task": {"id": task["id"], "name": task["name"]},
        "run_id": run_id,
        "mailbox": {"id": mailbox["id"], "address": mailbox["address"]},
        "action": {"id": action["id"], "name": action.get("name", "")},
        "count": len(messages),
        "messages": [message_entry(m) for m in messages],
    }


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_status(*, matched: int, done: int, failed: int, error: str | None) -> RunStatus:
    """A run's outcome from its counts: every message acted on, some, or none (or it could not run)."""
    if error is not None and done == 0:
        return "failed"
    if failed or error is not None:
        return "partial" if done else "failed"
    return "succeeded"

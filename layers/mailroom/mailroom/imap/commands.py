"""Writing IMAP command arguments: quoted mailbox names, UID sets, search dates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def quote(value: str) -> str:
    """``value`` as an IMAP quoted string: backslashes and double quotes escaped.

    CR, LF and NUL cannot be quoted (they would end the command line); aioimaplib refuses
    arguments carrying them with ValueError.
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def uid_set(uids: Iterable[int]) -> str:
    """The UIDs as a compact sequence set: ``[1, 2, 3, 5, 7, 8]`` -> ``1:3,5,7:8``."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set cannot be written")
    if ordered[0] < 1:
        raise ValueError(f"UIDs start at 1, got {ordered[0]}")
    ranges: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:]:
        if uid != previous + 1:
            ranges.append(_range(start, previous))
            start = uid
        previous = uid
    ranges.append(_range(start, previous))
    return ",".join(ranges)


def _range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}:{end}"


def search_date(day: date) -> str:
    """``day`` as SEARCH writes dates (``1-Feb-2025``); month names are fixed, not the locale's."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year:04d}"

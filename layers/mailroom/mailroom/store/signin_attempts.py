"""Sign-in throttling per address: a fixed window of attempts, counted before the password is
checked, so parallel guesses cannot overshoot the limit (the conditional ADD is the gate).

Keyed on the SHA-256 of the address, outside any tenant partition: an address that does not exist
must be throttled exactly like one that does, or the lockout would tell which addresses exist.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Table
from mailroom.store.txn import Update


@dataclass(frozen=True, slots=True)
class Attempt:
    allowed: bool
    retry_after: int  # seconds until the window ends (meaningful when not allowed)


def _key(address: str, window_start: int) -> tuple[str, str]:
    digest = hashlib.sha256(address.lower().encode("utf-8")).hexdigest()
    return keys.signin_pk(digest), str(window_start)


def begin(table: Table, address: str, *, now: int, window: int, max_attempts: int) -> Attempt:
    """Count one attempt, unless the window's attempts are used up."""
    start = now - now % window
    pk, sk = _key(address, start)
    change = Update(pk, sk, upsert=True).add(attempts=1).set(ttl=start + 2 * window)
    change.at_most("attempts", max_attempts - 1)
    try:
        change.apply(table)
    except ConditionFailed:
        return Attempt(allowed=False, retry_after=max(1, start + window - now))
    return Attempt(allowed=True, retry_after=0)


def succeeded(table: Table, address: str, *, now: int, window: int) -> None:
    """A correct password clears the window, so the owner is not locked out by their own typos."""
    start = now - now % window
    with contextlib.suppress(ConditionFailed):
        table.delete(*_key(address, start))

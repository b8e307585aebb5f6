"""Trying a store call again, for the few writes that must land once something irreversible is done.

botocore already retries each AWS call a few times within a second or two; an outage or a burst of
throttling can outlast that. Where giving up now would cost more than waiting (the mail is already
out and its Sent copy must be stored; an idempotency record must say how the request ended, or the
client's retry would be refused or would do it twice), the call is tried again after a jittered,
growing pause while it fails with a retryable store error. Anything else raises at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from mailroom.store.errors import StoreError

T = TypeVar("T")

ATTEMPTS = 5
BASE_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 2.0


def retried(
    call: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried up to ``attempts`` times while it raises a retryable ``StoreError`` (full
    jitter: a pause of up to ``base_delay`` doubled each time, at most ``MAX_DELAY_SECONDS``)."""
    made = 0
    while True:
        try:
            return call()
        except StoreError as exc:
            made += 1
            if not exc.retryable or made >= attempts:
                raise
            sleep(random.uniform(0, min(MAX_DELAY_SECONDS, base_delay * 2 ** (made - 1))))  # noqa: S311 - jitter

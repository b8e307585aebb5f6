"""store.retry.retried: a call tried again through retryable store errors only, with bounded,
growing, jittered pauses."""

from __future__ import annotations

import pytest

from mailroom.store.errors import ConditionFailed, ServiceUnavailable, Throttled
from mailroom.store.retry import MAX_DELAY_SECONDS, retried


class Flaky:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def test_a_call_that_passes_is_made_once_without_pausing() -> None:
    pauses: list[float] = []
    flaky = Flaky()
    assert retried(flaky, sleep=pauses.append) == "done"
    assert (flaky.calls, pauses) == (1, [])


def test_retryable_errors_are_waited_out() -> None:
    pauses: list[float] = []
    flaky = Flaky(Throttled("slow"), ServiceUnavailable("down"), Throttled("slow"))
    assert retried(flaky, base_delay=0.1, sleep=pauses.append) == "done"
    assert flaky.calls == 4
    # Full jitter under a ceiling that doubles: 0.1, 0.2, 0.4.
    assert len(pauses) == 3 and all(0 <= p <= 0.1 * 2**i for i, p in enumerate(pauses))


def test_an_error_that_will_not_pass_is_raised_at_once() -> None:
    flaky = Flaky(ConditionFailed("no"))
    with pytest.raises(ConditionFailed):
        retried(flaky, sleep=lambda _: None)
    assert flaky.calls == 1


def test_it_gives_up_after_its_attempts_with_the_last_error() -> None:
    pauses: list[float] = []
    flaky = Flaky(*(Throttled(f"slow {i}") for i in range(10)))
    with pytest.raises(Throttled, match="slow 3"):
        retried(flaky, attempts=4, base_delay=10.0, sleep=pauses.append)
    assert flaky.calls == 4
    assert len(pauses) == 3 and max(pauses) <= MAX_DELAY_SECONDS

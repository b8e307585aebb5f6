"""API Gateway's authorizer result cache: one entry per identity source value, for TTL seconds.

Both allow and deny results are cached; errors are not (the next request calls the authorizer
again). A TTL of 0 disables caching, as on API Gateway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AuthorizerResult:
    authorized: bool
    context: dict[str, Any] | None


class AuthorizerCache:
    def __init__(
        self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, AuthorizerResult]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> AuthorizerResult | None:
        if self.ttl_seconds <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, result = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            return result

    def put(self, key: Hashable, result: AuthorizerResult) -> None:
        if self.ttl_seconds <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._entries) >= self._max_entries:
                # Drop what has expired; if that is not enough, start over (it is only a cache).
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
            self._entries[key] = (now + self.ttl_seconds, result)

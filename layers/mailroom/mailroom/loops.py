"""One asyncio event loop per thread, kept open: for sync code (Lambda handlers, worker threads)
that runs coroutines."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_thread_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this thread's event loop, creating one if needed and never closing it.

    ``asyncio.run`` would close the loop and leave the thread without one, which breaks Mangum on a
    thread that serves API functions next (the local stack shares worker threads); Lambda's Python
    runtime and Mangum keep one loop per thread the same way.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop.run_until_complete(coro)

"""Suite-wide guards."""

from __future__ import annotations

from collections import Counter

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Two tests with one node id run as one under pytest-xdist (its schedulers key work by node id):
    the others pass without running. pytest 9.2 built schemathesis' generated tests that way, and
    ``make test`` ran one of 271 fuzzed operations, silently."""
    duplicates = sorted(
        nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1
    )
    if duplicates:
        raise pytest.UsageError(
            f"tests sharing a node id (xdist would run only one of each): {duplicates[:5]}"
        )

"""End-to-end fixtures: ``stack`` is one local stack for the whole session.

Tests using it belong to the ``stack`` xdist group (``pytest.mark.xdist_group("stack")``), so under
``-n 2 --dist loadgroup`` they share one worker and one stack. Tests that need another configuration
start their own with ``tests.e2e.stack_process.start_stack``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack

# The operator's support address of the session stack: tickets are emailed there, which the local
# stack's outbound writes to its outbox (operator.example is hosted nowhere).
SUPPORT_ADDRESS = "help@operator.example"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with start_stack(
        tmp_path_factory.mktemp("mailroom-state"),
        MAILROOM_PARAMETER_OVERRIDES=f"SupportAddress={SUPPORT_ADDRESS}",
    ) as running:
        yield running

"""Checks on the test run itself."""

from __future__ import annotations

from collections.abc import Generator

import pytest

_UNGROUPED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None]:
    """Under ``--dist loadgroup`` a worker marks each grouped test's node id with its group, which is
    how the scheduler keeps a group on one worker. Should that silently stop (pytest-xdist#1386, with
    pytest 9.2), every worker would start its own copy of the stacks a group shares and the run
    would slow down by minutes: those tests fail instead, saying why."""
    yield
    if not config.getoption("loadgroup", default=False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            item.stash[_UNGROUPED] = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(_UNGROUPED, False):
        pytest.fail(
            "--dist loadgroup did not group this test (its node id carries no @group): this pytest and "
            "pytest-xdist pair does not group (pytest-dev/pytest-xdist#1386); see pyproject.toml's pin",
            pytrace=False,
        )

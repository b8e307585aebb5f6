"""The migration worker's entry point names a retryable AWS failure ``StoreUnavailable`` for Step
Functions (statemachines/migration.asl.json retries that name), whatever its store error type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailroom.entry import steps
from mailroom.services import migration_steps
from mailroom.store.errors import Contended, InvalidRequest, ServiceUnavailable, StoreError, Throttled

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "migration.asl.json"


def failing_with(error: Exception) -> Any:
    def step(event: Any, remaining_ms: Any) -> Any:
        raise error

    return step


@pytest.mark.parametrize("error", [Throttled("slow"), ServiceUnavailable("down"), Contended("busy")])
def test_a_retryable_store_error_reaches_step_functions_as_store_unavailable(
    monkeypatch: pytest.MonkeyPatch, error: StoreError
) -> None:
    monkeypatch.setitem(migration_steps.STEPS, "plan", failing_with(error))
    with pytest.raises(steps.StoreUnavailable) as raised:
        steps.migration_step({"step": "plan", "state": {"job_id": "mig_1"}}, None)
    assert raised.value.__cause__ is error


def test_any_other_error_keeps_its_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(migration_steps.STEPS, "plan", failing_with(InvalidRequest("bad")))
    with pytest.raises(InvalidRequest):
        steps.migration_step({"step": "plan", "state": {"job_id": "mig_1"}}, None)


def test_every_task_that_calls_aws_without_a_catch_all_retry_retries_store_unavailable() -> None:
    def tasks(states: dict[str, Any]) -> dict[str, Any]:
        found = {}
        for name, state in states.items():
            if state["Type"] == "Task":
                found[name] = state
            if state["Type"] == "Map":
                found |= tasks(state["ItemProcessor"]["States"])
        return found

    for name, task in tasks(json.loads(ASL.read_text())["States"]).items():
        retried = {error for retrier in task.get("Retry", []) for error in retrier["ErrorEquals"]}
        assert "StoreUnavailable" in retried or "States.ALL" in retried, name

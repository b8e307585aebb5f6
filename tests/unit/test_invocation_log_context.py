"""Each invocation's log lines carry its own keys only: function, request id, correlation id, and what
it appended, also when the local runtime runs invocations of several functions side by side on
threads of one process, and when one of them fails.

The functions run Mailroom's real entry stack (``mailroom.entry.runtime.lambda_entry``) in the
real local runtime; their lines are what Powertools' handler writes, the failure line is the
runtime's own (what Lambda writes for an unhandled error).
"""

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runtime import FunctionError, FunctionRuntime
from local.stack import Stack
from mailroom.observability import logger

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "logging.yaml"
OWN_KEYS = ("function_name", "function_request_id", "correlation_id")


@pytest.fixture
def runtime() -> Iterator[FunctionRuntime]:
    runtime = FunctionRuntime(Stack.load(FIXTURE).functions, concurrency=4)
    yield runtime
    runtime.shutdown(wait_seconds=5)


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What Powertools writes while the test runs (its handler's stream, swapped), as parsed lines."""
    handler = logger().registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous)


def event(correlation_id: str, rendezvous: str, **extra: Any) -> dict[str, Any]:
    return {"correlation_id": correlation_id, "rendezvous": rendezvous, "parties": 3, **extra}


def test_concurrent_invocations_log_only_their_own_keys(runtime, log_lines, caplog):
    caplog.set_level(logging.ERROR, logger="local.runtime")
    meeting = f"meet-{uuid.uuid4()}"
    calls = {
        "Migrating": (
            str(uuid.uuid4()),
            event("corr-migrating", meeting, keys={"migration_id": "mig_1", "step": "plan"}),
        ),
        "Listing": (str(uuid.uuid4()), event("corr-listing", meeting)),
        "Failing": (str(uuid.uuid4()), event("corr-failing", meeting, fail=True)),
    }
    futures = {
        name: runtime.submit(name, payload, request_id=request_id)
        for name, (request_id, payload) in calls.items()
    }
    assert futures["Migrating"].result(timeout=30) == {"correlation_id": "corr-migrating"}
    assert futures["Listing"].result(timeout=30) == {"correlation_id": "corr-listing"}
    with pytest.raises(FunctionError) as failed:
        futures["Failing"].result(timeout=30)
    assert failed.value.request_id == calls["Failing"][0]

    lines = log_lines()
    by_function: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_function.setdefault(line["function_name"], []).append(line)
    assert set(by_function) == {f"mailroom-local-{name}" for name in calls}
    for name, (request_id, payload) in calls.items():
        own = by_function[f"mailroom-local-{name}"]
        assert [line["message"] for line in own] == ["started", "working"]
        for line in own:
            assert (line["function_request_id"], line["correlation_id"]) == (
                request_id,
                payload["correlation_id"],
            )
            # The first invocation of each function is its cold start, whatever ran before it.
            assert line["cold_start"] is True
            appended = {k: line[k] for k in ("migration_id", "step") if k in line}
            assert appended == payload.get("keys", {})
    # Nobody else's id on any line: each id appears on its own function's lines only.
    for name, (request_id, payload) in calls.items():
        carrying = {line["function_name"] for line in lines if request_id in json.dumps(line)}
        assert carrying == {f"mailroom-local-{name}"}
        carrying = {line["function_name"] for line in lines if payload["correlation_id"] in json.dumps(line)}
        assert carrying == {f"mailroom-local-{name}"}

    # The runtime's own report of the failure names that function and that invocation only.
    (failure,) = [r for r in caplog.records if r.name == "local.runtime" and r.levelno == logging.ERROR]
    text = failure.getMessage()
    assert text.startswith(f"Failing: invocation {calls['Failing'][0]} failed")
    assert "failing on purpose (corr-failing)" in text
    assert all(calls[other][0] not in text for other in ("Migrating", "Listing"))


def test_no_key_outlives_its_invocation(runtime, log_lines):
    meeting = f"solo-{uuid.uuid4()}"
    first = event("corr-first", meeting, parties=1, keys={"migration_id": "mig_2", "step": "finalize"})
    runtime.invoke("Migrating", first)
    second_id = str(uuid.uuid4())
    runtime.invoke("Migrating", event("corr-second", f"{meeting}-2", parties=1), request_id=second_id)

    lines = log_lines()
    later = [line for line in lines if line["function_request_id"] == second_id]
    assert [line["message"] for line in later] == ["started", "working"]
    for line in later:
        assert line["correlation_id"] == "corr-second"
        assert line["cold_start"] is False
        assert "migration_id" not in line and "step" not in line

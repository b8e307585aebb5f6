"""The in-process Lambda runtime: cold starts, context, errors, timeouts, event loops."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.runtime import FunctionError, FunctionRuntime, FunctionTimeout, LambdaContext
from local.stack import Stack
from mailroom.loops import run_on_thread_loop

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"


@pytest.fixture
def runtime() -> Iterator[FunctionRuntime]:
    runtime = FunctionRuntime(Stack.load(FIXTURE).functions, concurrency=4)
    yield runtime
    runtime.shutdown(wait_seconds=5)


def test_handlers_are_imported_on_first_invocation(runtime):
    sys.modules.pop("_mailroom_local_fn_Plan", None)
    assert not runtime.is_loaded("Plan")
    assert "_mailroom_local_fn_Plan" not in sys.modules
    assert runtime.invoke("Plan", {"count": 2}) == {"items": [1, 2]}
    assert runtime.is_loaded("Plan")
    assert runtime.invocations["Plan"] == 1


def test_functions_are_found_by_logical_id_name_or_arn(runtime):
    spec = runtime.spec("Plan")
    assert runtime.spec(spec.name) is spec
    assert runtime.spec(spec.arn) is spec
    assert runtime.spec(spec.arn + ":$LATEST") is spec
    with pytest.raises(KeyError):
        runtime.spec("Nope")


def test_each_worker_has_an_event_loop_and_the_context_counts_down(runtime):
    result = runtime.invoke("Slow", {"sleep": 0})
    assert result["loop_running"] is False
    assert 0 < result["remaining_ms"] <= 1000
    assert result["request_id"]


def test_unhandled_error_carries_lambdas_error_payload(runtime):
    with pytest.raises(FunctionError) as caught:
        runtime.invoke("Broken", {})
    assert caught.value.error_type == "ValueError"
    assert caught.value.payload()["errorMessage"] == "broken on purpose"
    assert caught.value.payload()["stackTrace"]


def test_running_past_the_timeout_fails_the_invocation(runtime):
    with pytest.raises(FunctionTimeout) as caught:
        runtime.invoke("Slow", {"sleep": 1.2})
    assert caught.value.error_type == "Sandbox.Timedout"


def test_submit_runs_without_waiting(runtime):
    future = runtime.submit("Plan", {"count": 3})
    assert future.result(timeout=5) == {"items": [1, 2, 3]}


def test_invoke_async_from_an_event_loop(runtime):
    async def call() -> object:
        return await runtime.invoke_async("Plan", {"count": 1})

    assert run_on_thread_loop(call()) == {"items": [1]}


def test_events_must_be_json_like_a_request_body(runtime):
    with pytest.raises(TypeError):
        runtime.submit("Plan", {"count": object()})


def test_context_remaining_time_uses_its_clock():
    now = [100.0]
    context = LambdaContext(
        function_name="f",
        invoked_function_arn="arn",
        memory_limit_in_mb=128,
        aws_request_id="r",
        deadline=102.5,
        _clock=lambda: now[0],
    )
    assert context.get_remaining_time_in_millis() == 2500
    now[0] = 103.0
    assert context.get_remaining_time_in_millis() == 0

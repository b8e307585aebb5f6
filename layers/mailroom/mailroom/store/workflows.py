"""Step Functions: start, stop and describe executions of the migration state machine."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store.errors import AlreadyExists, InvalidRequest, ObjectMissing


class WorkflowNotConfigured(RuntimeError):
    pass


def _sfn() -> Any:
    return aws.client("stepfunctions")


def state_machine_arn() -> str:
    arn = get_settings().migration_state_machine_arn
    if not arn:
        raise WorkflowNotConfigured("MAILROOM_MIGRATION_STATE_MACHINE_ARN is not set")
    return arn


def execution_arn(name: str) -> str:
    """The ARN an execution of the migration state machine gets when started with ``name``."""
    machine = state_machine_arn()
    prefix, _, machine_name = machine.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine_name}:{name}"


def start(name: str, payload: dict[str, Any]) -> str:
    """Start an execution named ``name``; the same name and input again is the same execution
    (Step Functions' idempotency for 90 days), so a retried step cannot start two."""
    try:
        response = _sfn().start_execution(
            stateMachineArn=state_machine_arn(), name=name, input=json.dumps(payload, sort_keys=True)
        )
    except AlreadyExists:
        return execution_arn(name)
    return str(response["executionArn"])


def stop(arn: str, *, error: str, cause: str) -> None:
    """Stop an execution; one that already ended (or never existed) is left as it is."""
    with contextlib.suppress(ObjectMissing, InvalidRequest):
        _sfn().stop_execution(executionArn=arn, error=error[:256], cause=cause[:32768])


def status(arn: str) -> str | None:
    """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (or None: no such execution)."""
    try:
        return str(_sfn().describe_execution(executionArn=arn)["status"])
    except ObjectMissing:
        return None

"""Migration test support: the AWS pieces of template.yaml's migration workflow inside moto, request
bodies, and a driver that runs the worker's steps the way statemachines/migration.asl.json does
(its states, Retry and Catch), invoking the worker function's handler with the events the state
machine builds. The e2e tests run the real state machine on moto's interpreter instead."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.lambda_api import LambdaContext, function_module

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "migration.asl.json"
WORKER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:mailroom-test-MigrationWorkerFunction"
MACHINE_NAME = "mailroom-test-migration"
SOURCE_PASSWORD = "source-secret-Pa55"


@dataclass(frozen=True)
class MigrationAws:
    bucket: str
    key_alias: str
    state_machine_arn: str


def provision_migration_aws(monkeypatch: Any) -> MigrationAws:
    """Inside moto: the mail bucket, the KMS key, and the migration state machine (recorded, not
    run: moto executes state machines only when configured to), and the settings naming them."""
    import boto3

    from mailroom.settings import get_settings
    from tests.support.mailboxes import create_mail_infrastructure

    bucket, _queue = create_mail_infrastructure()
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="migration secrets")["KeyMetadata"]["KeyId"]
    alias = "alias/mailroom-test-migrations"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    definition = ASL.read_text().replace("${MigrationWorkerArn}", WORKER_ARN)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name=MACHINE_NAME, definition=definition, roleArn="arn:aws:iam::123456789012:role/migration-machine"
    )["stateMachineArn"]
    for name, value in {
        "MAILROOM_MAIL_BUCKET": bucket,
        "MAILROOM_KMS_KEY_ID": alias,
        "MAILROOM_MIGRATION_STATE_MACHINE_ARN": machine,
        "MAILROOM_IMAP_ALLOW_PRIVATE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return MigrationAws(bucket=bucket, key_alias=alias, state_machine_arn=machine)


def start_body(mailbox_id: str, target_password: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mailbox_id": mailbox_id,
        "provider": "generic_imap",
        "source_host": "127.0.0.1",
        "source_port": 993,
        "source_security": "ssl",
        "source_email": "jane.doe@example.org",
        "source_password": SOURCE_PASSWORD,
        "target_password": target_password,
    }
    body.update(overrides)
    return body


# ----------------------------------------------------------------------------- the workflow driver

_LAMBDA_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)


def _retry_limits() -> dict[str, dict[str, int]]:
    """Per task state: error name → MaxAttempts, read from the ASL (the driver retries the same)."""
    definition = json.loads(ASL.read_text())
    states = dict(definition["States"])
    states.update(definition["States"]["ImportWindow"]["ItemProcessor"]["States"])
    limits: dict[str, dict[str, int]] = {}
    for name, spec in states.items():
        for retrier in spec.get("Retry", []):
            for error in retrier["ErrorEquals"]:
                limits.setdefault(name, {})[error] = int(retrier.get("MaxAttempts", 3))
    return limits


class StepError(Exception):
    """A task that failed (after the driver's retries), shaped like a Catch result."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message

    def catch_result(self) -> dict[str, str]:
        return {
            "Error": self.error,
            "Cause": json.dumps({"errorMessage": self.message, "errorType": self.error}),
        }


@dataclass
class Run:
    """What one execution did: its end (completed, failed, stopped, handed_over) and its steps."""

    end: str
    steps: list[str] = field(default_factory=list)
    handed_over_to: dict[str, Any] | None = None
    error: dict[str, str] | None = None


@dataclass
class WorkflowDriver:
    """Runs executions of the migration machine step by step against the worker handler.

    ``before_step(name, event)`` runs before each task (tests cancel a job mid-way with it);
    ``seconds`` is each invocation's time budget (a small one makes batches run out of time)."""

    before_step: Callable[[str, dict[str, Any]], None] | None = None
    seconds: float = 900.0
    invocations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._limits = _retry_limits()

    def invoke(self, state_name: str, event: dict[str, Any]) -> Any:
        limits = self._limits.get(state_name, {})
        attempts: dict[str, int] = {}
        while True:
            if self.before_step is not None:
                self.before_step(state_name, event)
            self.invocations.append(str(event.get("step")))
            context = LambdaContext(function_name="migration_worker", deadline=time.time() + self.seconds)
            try:
                return function_module("migration_worker").handler(json.loads(json.dumps(event)), context)
            except Exception as exc:
                name = type(exc).__name__
                allowed = limits.get(name, limits.get("States.ALL", 0))
                attempts[name] = attempts.get(name, 0) + 1
                if attempts[name] > allowed:
                    raise StepError(name, str(exc)) from exc

    def import_window(self, item_state: dict[str, Any], window: dict[str, Any], run: Run) -> None:
        """The ImportWindow Map over one window's batches: one after the other here."""
        for seq in window["batches"]:
            run.steps.append("import_batch")
            self.invoke("ImportBatch", {"step": "import_batch", "state": item_state, "seq": seq})

    def execute(self, payload: dict[str, Any], execution_arn: str) -> Run:
        """One execution from its input, to its end."""
        state = dict(payload)
        run = Run(end="")

        def task(name: str, step: str) -> Any:
            run.steps.append(step)
            return self.invoke(name, {"step": step, "state": state, "execution_arn": execution_arn})

        try:
            if "resume" not in state:
                task("Validate", "validate")
                state = task("Plan", "plan")
            while True:
                state = task("NextWindow", "next_window")
                window = state["window"]
                item_state = {k: state[k] for k in ("org_id", "job_id", "attempt", "segment")}
                self.import_window(item_state, window, run)
                if window["then"] == "finalize":
                    task("Finalize", "finalize")
                    run.end = "completed"
                    return run
                if window["then"] == "continue_as_new":
                    handed = task("ContinueAsNew", "continue_as_new")
                    run.end = "handed_over"
                    run.handed_over_to = {
                        **{k: state[k] for k in ("org_id", "job_id", "attempt")},
                        "segment": state["segment"] + 1,
                        "cursor": state["cursor"],
                        "windows_run": 0,
                        "resume": True,
                        "execution_arn": handed["execution_arn"],
                    }
                    return run
        except StepError as failure:
            if failure.error == "JobInactive":
                run.end = "stopped"
                return run
            run.error = failure.catch_result()
            self.invoke("RecordFailure", {"step": "fail", "state": {**state, "error": run.error}})
            run.end = "failed"
            return run

    def run_job(self, job: dict[str, Any]) -> list[Run]:
        """Every execution of the job's current attempt, following continue-as-new hand-overs."""
        payload = {"org_id": job["org_id"], "job_id": job["id"], "attempt": job["attempt"], "segment": 0}
        arn = str(job["execution_arn"])
        runs = []
        while True:
            run = self.execute(payload, arn)
            runs.append(run)
            if run.end != "handed_over" or run.handed_over_to is None:
                return runs
            payload = dict(run.handed_over_to)
            arn = str(payload.pop("execution_arn"))

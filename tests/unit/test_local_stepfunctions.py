"""Step Functions on moto's interpreter, with Lambda tasks dispatched to the in-process handlers.

Runs moto as a server on a free port (as the local stack does), so the path under test is the real
one: state machine → moto's Lambda API over HTTP → the hook → the fixture handler.
"""

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import stepfunctions
from local.aws import ChangeTracker, Clients, MotoServer, provision
from local.runtime import FunctionRuntime
from local.stack import Stack
from local.template import Naming

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "local" / "template.yaml"


class Env:
    def __init__(self, stack: Stack, clients: Clients, runtime: FunctionRuntime, records: Path) -> None:
        self.stack, self.clients, self.runtime, self.records = stack, clients, runtime, records


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    records = tmp_path_factory.mktemp("records")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("LOCAL_FIXTURE_RECORDS", str(records))
        server = MotoServer(0, ChangeTracker())
        server.start()
        mp.setenv("MOTO_PORT", str(server.port))  # where moto's interpreter sends its Lambda calls
        stack = Stack.load(FIXTURE, naming=Naming(sqs_endpoint=server.url))
        clients = Clients(region="us-east-1", endpoint_url=server.url)
        provision(stack, clients)
        runtime = FunctionRuntime(stack.functions, concurrency=8)
        stepfunctions.install(runtime)
        try:
            yield Env(stack, clients, runtime, records)
        finally:
            stepfunctions.uninstall()
            runtime.shutdown(wait_seconds=10)
            # The config endpoint changes moto's process-wide defaults: put them back for other tests.
            request = urllib.request.Request(
                f"{server.url}/moto-api/config",
                data=json.dumps(
                    {"lambda": {"use_docker": True}, "stepfunctions": {"execute_state_machine": False}}
                ).encode(),
                method="POST",
            )
            urllib.request.urlopen(request, timeout=10).read()
            server.stop()


def wait_for_execution(sfn, arn: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def test_state_machine_runs_the_handlers(env):
    sfn = env.clients("stepfunctions")
    (machine,) = env.stack.state_machines
    before = dict(env.runtime.invocations)
    started = sfn.start_execution(stateMachineArn=machine.arn, input=json.dumps({"count": 3}))
    described = wait_for_execution(sfn, started["executionArn"])

    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["total"] == 12  # Plan → Map(Double) → Finalize really ran: 2 + 4 + 6
    assert output["caught"]["Error"] == "ValueError"  # Catch matched the handler's exception type
    assert "broken on purpose" in output["caught"]["Cause"]

    def calls(name: str) -> int:
        return env.runtime.invocations[name] - before.get(name, 0)

    assert calls("Plan") == 1
    assert calls("Double") == 4  # three items, one FlakyError retried
    assert calls("Finalize") == 1
    doubled = [json.loads(line) for line in (env.records / "Double.jsonl").read_text().splitlines()]
    assert sorted(doubled) == [1, 2, 2, 3]


def test_lambda_invoke_through_moto_reaches_the_handler(env):
    lam = env.clients("lambda")
    plan = env.stack.functions["Plan"]
    response = lam.invoke(FunctionName=plan.name, Payload=json.dumps({"count": 2}).encode())
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"items": [1, 2]}

    failed = lam.invoke(FunctionName=env.stack.functions["Broken"].arn, Payload=b"{}")
    assert failed["FunctionError"] == "Unhandled"
    payload = json.loads(failed["Payload"].read())
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "broken on purpose")

    before = env.runtime.invocations["Plan"]
    queued = lam.invoke(FunctionName=plan.name, Payload=b'{"count": 1}', InvocationType="Event")
    assert queued["StatusCode"] == 202
    deadline = time.monotonic() + 10
    while env.runtime.invocations["Plan"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert env.runtime.invocations["Plan"] == before + 1

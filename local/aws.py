"""The emulated AWS account: moto's server on loopback, and the template's resources created in it.

``MotoServer`` also counts requests that may change state (``ChangeTracker``), so periodic
snapshots are taken only when something changed. ``provision`` creates tables, buckets, queues,
KMS keys and aliases, the functions (registered in moto's Lambda so their ARNs resolve), SES receipt
rules and state machines, and is idempotent (a restart over restored state finds them already there).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from local import faults
from local.stack import FunctionSpec, ResourceSpec, Stack

log = logging.getLogger(__name__)

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
LAMBDA_ROLE = "mailroom-local-lambda"
_READ_OPERATIONS = (
    "Get",
    "Describe",
    "List",
    "Query",
    "Scan",
    "BatchGet",
    "Head",
    "ReceiveMessage",
    "Select",
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ChangeTracker:
    """A counter of state-changing requests. Conservative: an unknown request counts as a change."""

    def __init__(self) -> None:
        self._version = 0
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        return self._version

    def mark(self) -> None:
        with self._lock:
            self._version += 1

    def middleware(self, app: WsgiApp) -> WsgiApp:
        def tracked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if may_change_state(environ):
                self.mark()
            return app(environ, start_response)

        return tracked


def may_change_state(environ: dict[str, Any]) -> bool:
    if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
        return False
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocols: DynamoDB, SQS, Step Functions, ...
        return not str(target).rpartition(".")[2].startswith(_READ_OPERATIONS)
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if action:
        return not action[0].startswith(_READ_OPERATIONS)
    return environ.get("REQUEST_METHOD") not in ("GET", "HEAD")


class MotoServer:
    """moto's server in a thread of this process (so the local stack can reach its backends directly)."""

    def __init__(self, port: int, tracker: ChangeTracker) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        outer = self
        # The app the server runs, and what this process's own AWS calls reach directly
        # (local/loopback.py): werkzeug's server closes the connection after every response.
        self.app: WsgiApp = tracker.middleware(DomainDispatcherApplication(create_backend_app))

        class _TrackedServer(ThreadedMotoServer):  # type: ignore[misc]
            # ThreadedMotoServer builds its WSGI app inside this method: rebuilt here to wrap it.
            def _server_entry(self) -> None:
                try:
                    self._server = make_server(
                        self._ip_address, self._port, outer.app, True, request_handler=MotoRequestHandler
                    )
                except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
                    outer._error = exc
                    self._server_ready_event.set()  # start() would otherwise wait forever
                    return
                outer._bound_port = self._server.server_address[1]
                self._server_ready_event.set()
                self._server.serve_forever(poll_interval=0.05)  # a quick shutdown

        self._bound_port = port
        self._error: BaseException | None = None
        self._server = _TrackedServer(ip_address="127.0.0.1", port=port, verbose=False)

    @property
    def port(self) -> int:
        return self._bound_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._bound_port}"

    def start(self) -> None:
        self._server.start()
        if self._error is not None:
            raise RuntimeError(
                f"the AWS emulator cannot listen on 127.0.0.1:{self._bound_port} (is the port in use?)"
            )
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL
            f"{self.url}/moto-api/config",
            data=json.dumps(MOTO_CONFIG).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL
            response.read()

    def stop(self) -> None:
        self._server.stop()


_session_lock = threading.Lock()
_sessions: list[Any] = []


def _shared_session() -> Any:
    """One boto3 session for the process: it caches the service models, which cost ~0.15 s per client."""
    with _session_lock:
        if not _sessions:
            import boto3

            _sessions.append(boto3.session.Session())
        return _sessions[0]


@dataclass
class Clients:
    """boto3 clients for the emulated account (``endpoint_url`` None: boto3's default, as under mock_aws).

    These are the local stack's own clients, playing AWS's internal part (event source pollers, SES
    receiving, provisioning, snapshots): fault injection (local/faults.py) never touches them.
    """

    region: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        with _session_lock:
            cached = self._cache.get(service)
        if cached is not None:
            return cached
        session = _shared_session()
        with _session_lock:  # a session is not safe to share between threads while creating clients
            if service not in self._cache:
                self._cache[service] = faults.exempt(
                    session.client(
                        service,
                        region_name=self.region,
                        endpoint_url=self.endpoint_url,
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",  # noqa: S106 - moto's fake keys
                    )
                )
            return self._cache[service]


def _exists(call: Callable[[], Any], *missing_codes: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in missing_codes:
            return False
        raise
    return True


def provision(stack: Stack, clients: Clients) -> None:
    """Create every resource the template declares that moto emulates (skipping existing ones)."""
    for table in stack.tables:
        _create_table(clients("dynamodb"), table)
    for bucket in stack.buckets:
        _create_bucket(clients("s3"), bucket, stack.naming.region)
    # Dead-letter queues first: a redrive policy must name an existing queue.
    for queue in sorted(stack.queues, key=lambda q: "RedrivePolicy" in q.properties):
        _create_queue(clients("sqs"), queue)
    _register_functions(stack, clients)
    _create_kms_keys(stack, clients("kms"))
    _create_schedule_groups(stack, clients("scheduler"))
    _create_receipt_rules(stack, clients("ses"))
    sfn = clients("stepfunctions")
    existing = {
        m["name"]
        for page in sfn.get_paginator("list_state_machines").paginate()
        for m in page["stateMachines"]
    }
    for machine in stack.state_machines:
        if machine.name not in existing:
            sfn.create_state_machine(
                name=machine.name,
                definition=json.dumps(machine.definition),
                roleArn=machine.role_arn,
                type=machine.type,
            )


def _create_table(dynamodb: Any, spec: ResourceSpec) -> None:
    if _exists(lambda: dynamodb.describe_table(TableName=spec.name), "ResourceNotFoundException"):
        return
    props = spec.properties
    billing = str(props.get("BillingMode", "PROVISIONED"))
    kwargs: dict[str, Any] = {
        "TableName": spec.name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": billing,
    }

    def throughput(source: dict[str, Any]) -> dict[str, int]:
        given = source.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        return {k: int(v) for k, v in given.items()}

    if billing == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = throughput(props)
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            indexes = []
            for index in props[key]:
                copied = {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
                if key == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
                    copied["ProvisionedThroughput"] = throughput(index)
                indexes.append(copied)
            kwargs[key] = indexes
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    dynamodb.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification") or {}
    if str(ttl.get("Enabled", "false")).lower() == "true":
        dynamodb.update_time_to_live(
            TableName=spec.name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )


KMS_LOGICAL_ID_TAG = "mailroom-local:logical-id"


def _create_schedule_groups(stack: Stack, scheduler: Any) -> None:
    """The template's EventBridge Scheduler groups (functions create one-off schedules in them)."""
    existing = {g["Name"] for g in scheduler.list_schedule_groups().get("ScheduleGroups", [])}
    for logical_id, resource in stack.template.resources.items():
        if resource.get("Type") == "AWS::Scheduler::ScheduleGroup":
            name = stack.template.physical_name(logical_id)
            if name not in existing:
                scheduler.create_schedule_group(Name=name)


def _create_kms_keys(stack: Stack, kms: Any) -> None:
    """The template's keys and aliases. A key is found again through its alias (functions name keys
    by alias); one without an alias is made afresh each start. Key material survives restarts
    through the snapshot (``local.persistence``), or stored ciphertexts would become unreadable."""
    existing = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases().get("Aliases", [])}
    key_ids: dict[str, str] = {}
    for alias in stack.kms_aliases:
        if existing.get(alias.name):
            key_ids[alias.target] = str(existing[alias.name])
    for key in stack.kms_keys:
        if key.logical_id in key_ids:
            continue
        created = kms.create_key(
            Description=str(key.properties.get("Description", "")),
            KeyUsage=str(key.properties.get("KeyUsage", "ENCRYPT_DECRYPT")),
            KeySpec=str(key.properties.get("KeySpec", "SYMMETRIC_DEFAULT")),
            Tags=[{"TagKey": KMS_LOGICAL_ID_TAG, "TagValue": key.logical_id}],
        )
        key_ids[key.logical_id] = created["KeyMetadata"]["KeyId"]
    for alias in stack.kms_aliases:
        if alias.name not in existing:
            kms.create_alias(AliasName=alias.name, TargetKeyId=key_ids[alias.target])


def _create_bucket(s3: Any, spec: ResourceSpec, region: str) -> None:
    if _exists(lambda: s3.head_bucket(Bucket=spec.name), "404", "NoSuchBucket"):
        return
    kwargs: dict[str, Any] = {"Bucket": spec.name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    status = (spec.properties.get("VersioningConfiguration") or {}).get("Status")
    if status:
        s3.put_bucket_versioning(Bucket=spec.name, VersioningConfiguration={"Status": status})


_QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
)


def queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    """CloudFormation queue properties → SQS attributes (all strings; policies as JSON)."""
    attributes = {}
    for name in _QUEUE_ATTRIBUTES:
        if name in properties:
            value = properties[name]
            attributes[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for name in ("RedrivePolicy", "RedriveAllowPolicy"):
        if name in properties:
            value = properties[name]
            attributes[name] = value if isinstance(value, str) else json.dumps(value)
    return attributes


def _create_queue(sqs: Any, spec: ResourceSpec) -> None:
    # CreateQueue is idempotent for identical attributes; moto also accepts it for an existing queue.
    sqs.create_queue(QueueName=spec.name, Attributes=queue_attributes(spec.properties))


def _register_functions(stack: Stack, clients: Clients) -> None:
    """Register each function in moto's Lambda so ARNs resolve (Step Functions, SES rules, invoke)."""
    import io
    import zipfile

    iam = clients("iam")
    role_arn = f"arn:aws:iam::{stack.naming.account_id}:role/{LAMBDA_ROLE}"
    if not _exists(lambda: iam.get_role(RoleName=LAMBDA_ROLE), "NoSuchEntity"):
        iam.create_role(
            RoleName=LAMBDA_ROLE,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app.py", "# runs in-process in the local stack\n")
    lam = clients("lambda")
    registered = {
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    }
    for spec in stack.functions.values():
        if spec.name not in registered:
            lam.create_function(
                FunctionName=spec.name,
                Runtime=spec.runtime,
                Role=role_arn,
                Handler=spec.handler,
                Code={"ZipFile": archive.getvalue()},
                Timeout=spec.timeout,
                MemorySize=spec.memory_size,
            )
        _publish_alias(lam, spec)
    _mirror_for_ses_validation(stack, role_arn, archive.getvalue())


def _publish_alias(lam: Any, spec: FunctionSpec) -> None:
    """AutoPublishAlias as SAM deploys it: a published version and the alias on it, so that ARNs
    qualified with the alias (Step Functions' tasks, schedules, SES rules) name a function moto knows."""
    if not spec.alias:
        return
    try:
        lam.get_alias(FunctionName=spec.name, Name=spec.alias)
        return
    except lam.exceptions.ResourceNotFoundException:
        pass
    version = lam.publish_version(FunctionName=spec.name)["Version"]
    lam.create_alias(FunctionName=spec.name, Name=spec.alias, FunctionVersion=version)


def _mirror_for_ses_validation(stack: Stack, role_arn: str, archive: bytes) -> None:
    """moto's SES checks a LambdaAction's function in the Docker Lambda backend, not the Docker-free
    one that serves the Lambda API here; register the functions there too (never invoked there)."""
    import base64

    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[stack.naming.account_id][stack.naming.region]
    registered = {fn.function_name for fn in backend.list_functions()}
    for spec in stack.functions.values():
        if spec.name not in registered:
            backend.create_function(
                {
                    "FunctionName": spec.name,
                    "Runtime": spec.runtime,
                    "Role": role_arn,
                    "Handler": spec.handler,
                    "Code": {"ZipFile": base64.b64encode(archive).decode()},
                }
            )
        if spec.alias and spec.alias not in {a.name for a in backend.list_aliases(spec.name)}:
            version = backend.publish_version(spec.name)
            assert version is not None  # the function was registered just above
            backend.create_alias(spec.alias, spec.name, str(version.version), "", "")


def _create_receipt_rules(stack: Stack, ses: Any) -> None:
    if not stack.rule_sets and not stack.receipt_rules:
        return
    existing_sets = {s["Name"] for s in ses.list_receipt_rule_sets().get("RuleSets", [])}
    names = [rs.name for rs in stack.rule_sets]
    for name in names:
        if name not in existing_sets:
            ses.create_receipt_rule_set(RuleSetName=name)
    last_rule: dict[str, str] = {}
    for spec in stack.receipt_rules:
        rule = dict(spec.rule)
        rule.setdefault("Name", f"{stack.naming.stack_name}-{spec.logical_id}")
        rule["Enabled"] = str(rule.get("Enabled", False)).lower() == "true"
        if "ScanEnabled" in rule:
            rule["ScanEnabled"] = str(rule["ScanEnabled"]).lower() == "true"
        existing_rules = {
            r["Name"] for r in ses.describe_receipt_rule_set(RuleSetName=spec.rule_set)["Rules"]
        }
        # Without "After", SES puts a rule first; keep the template's order instead.
        after = spec.after or last_rule.get(spec.rule_set)
        if rule["Name"] not in existing_rules:
            ses.create_receipt_rule(
                RuleSetName=spec.rule_set, Rule=rule, **({"After": after} if after else {})
            )
        last_rule[spec.rule_set] = rule["Name"]
    active = ses.describe_active_receipt_rule_set().get("Metadata")
    if not active and names:
        if len(names) > 1:
            log.warning("several receipt rule sets (%s): activating %s", ", ".join(names), names[0])
        ses.set_active_receipt_rule_set(RuleSetName=names[0])

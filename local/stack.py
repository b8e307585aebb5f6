"""What the template declares, as typed specs the local services consume.

``Stack.load`` walks the resolved template once: functions (with SAM Globals), their HTTP API
routes, SQS event sources and schedules, the HTTP APIs' Lambda authorizers, and the resources
emulated in moto (tables, buckets, queues, SES receipt rules, state machines); EventBridge rules
and SES configuration sets' event destinations (what local/outbound.py publishes and to whom).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.streams import FilterPatternError, parse_pattern
from local.template import Naming, Template, TemplateError, env_string, load_yaml

log = logging.getLogger(__name__)

IMPLICIT_HTTP_API = "ServerlessHttpApi"  # what SAM calls the API of HttpApi events that name no ApiId
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    memory_size: int
    runtime: str
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...] = ()
    # EventInvokeConfig: retries of a failed asynchronous invocation, and where it goes after them.
    async_retries: int = 2
    async_on_failure_arn: str | None = None
    # AutoPublishAlias: events and other resources reach the function through this alias (SnapStart).
    alias: str | None = None

    @property
    def module_file(self) -> Path:
        """``app.handler`` → ``<code_dir>/app.py``; ``pkg.mod.handler`` → ``<code_dir>/pkg/mod.py``."""
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir.joinpath(*module.split(".")).with_suffix(".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True, slots=True)
class AuthorizerSpec:
    name: str
    function_arn: str
    identity_headers: tuple[str, ...]
    identity_query_strings: tuple[str, ...]
    ttl_seconds: int
    simple_responses: bool
    payload_version: str


@dataclass(frozen=True, slots=True)
class HttpApiSpec:
    logical_id: str
    api_id: str
    authorizers: dict[str, AuthorizerSpec]
    default_authorizer: str | None


@dataclass(frozen=True, slots=True)
class HttpRoute:
    method: str  # upper-case, or ANY
    path: str  # /a/{b}/{c+} or $default
    function: str  # logical id
    api: str  # logical id of the HTTP API
    authorizer: str | None  # authorizer name, None when the route is public

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class SqsMapping:
    function: str
    event: str
    queue_arn: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class StreamMapping:
    """A DynamoDB event source: the table whose stream it reads and how (see ``local.streams``)."""

    function: str
    event: str
    table: str  # logical id of the table
    starting_position: str
    batch_size: int
    batching_window_seconds: int
    bisect_on_error: bool
    maximum_retry_attempts: int  # -1: until the batch succeeds
    report_batch_item_failures: bool
    filters: tuple[dict[str, Any], ...]
    on_failure_arn: str | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    function: str
    event: str
    kind: str  # Schedule (EventBridge rule) or ScheduleV2 (EventBridge Scheduler)
    expression: str
    input: str | None
    enabled: bool
    timezone: str
    resource_arn: str


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A table, bucket, queue or receipt rule set: its physical name and resolved properties."""

    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KmsAliasSpec:
    name: str  # alias/...
    target: str  # logical id of the key


@dataclass(frozen=True, slots=True)
class ReceiptRuleSpec:
    logical_id: str
    rule_set: str
    rule: dict[str, Any]
    after: str | None


@dataclass(frozen=True, slots=True)
class EventRuleSpec:
    """An ``EventBridgeRule`` event source: events on the bus matching ``pattern`` invoke the function."""

    function: str
    event: str
    pattern: dict[str, Any]
    bus: str  # "default" unless EventBusName says otherwise
    enabled: bool


@dataclass(frozen=True, slots=True)
class SesEventDestinationSpec:
    """Where a configuration set publishes sending events (``AWS::SES::ConfigurationSetEventDestination``)."""

    configuration_set: str  # physical name
    name: str
    enabled: bool
    event_types: frozenset[str]  # SES's names: send, delivery, bounce, complaint, reject, deliveryDelay, ...
    kind: str  # eventbridge, sns, cloudwatch, firehose


@dataclass(frozen=True, slots=True)
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str
    definition: dict[str, Any]
    role_arn: str
    type: str


@dataclass
class Stack:
    template: Template
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    apis: dict[str, HttpApiSpec] = field(default_factory=dict)
    routes: list[HttpRoute] = field(default_factory=list)
    sqs_mappings: list[SqsMapping] = field(default_factory=list)
    stream_mappings: list[StreamMapping] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    tables: list[ResourceSpec] = field(default_factory=list)
    buckets: list[ResourceSpec] = field(default_factory=list)
    queues: list[ResourceSpec] = field(default_factory=list)
    kms_keys: list[ResourceSpec] = field(default_factory=list)
    kms_aliases: list[KmsAliasSpec] = field(default_factory=list)
    rule_sets: list[ResourceSpec] = field(default_factory=list)
    receipt_rules: list[ReceiptRuleSpec] = field(default_factory=list)
    state_machines: list[StateMachineSpec] = field(default_factory=list)
    event_rules: list[EventRuleSpec] = field(default_factory=list)
    ses_event_destinations: list[SesEventDestinationSpec] = field(default_factory=list)

    @classmethod
    def load(
        cls, path: Path, *, naming: Naming | None = None, overrides: Mapping[str, str] | None = None
    ) -> Stack:
        template = Template.load(path, naming=naming, overrides=overrides)
        stack = cls(template=template)
        stack._load_resources()
        stack._load_functions()
        stack._load_apis()
        stack._load_events()
        return stack

    @property
    def naming(self) -> Naming:
        return self.template.naming

    def function_by_arn(self, arn: str) -> FunctionSpec | None:
        for spec in self.functions.values():
            if arn in (spec.arn, spec.name) or arn.startswith(spec.arn + ":"):
                return spec
        return None

    def queue_by_arn(self, arn: str) -> ResourceSpec | None:
        return next((q for q in self.queues if self.template.arn(q.logical_id) == arn), None)

    # ----------------------------------------------------------------------------- resources

    def _load_resources(self) -> None:
        t = self.template
        by_type = {
            "AWS::DynamoDB::Table": self.tables,
            "AWS::S3::Bucket": self.buckets,
            "AWS::SQS::Queue": self.queues,
            "AWS::SES::ReceiptRuleSet": self.rule_sets,
            "AWS::KMS::Key": self.kms_keys,
        }
        for logical_id, resource in t.resources.items():
            kind = resource.get("Type")
            if kind in by_type:
                by_type[kind].append(
                    ResourceSpec(logical_id, t.physical_name(logical_id), t.properties(logical_id))
                )
            elif kind == "AWS::SES::ReceiptRule":
                props = t.properties(logical_id)
                self.receipt_rules.append(
                    ReceiptRuleSpec(
                        logical_id, str(props["RuleSetName"]), dict(props["Rule"]), props.get("After")
                    )
                )
            elif kind == "AWS::Serverless::StateMachine":
                self.state_machines.append(self._state_machine(logical_id))
            elif kind == "AWS::KMS::Alias":
                self.kms_aliases.append(self._kms_alias(logical_id, resource))
            elif kind == "AWS::SES::ConfigurationSetEventDestination":
                self.ses_event_destinations.append(self._ses_event_destination(logical_id))

    def _ses_event_destination(self, logical_id: str) -> SesEventDestinationSpec:
        props = self.template.properties(logical_id)
        destination = props.get("EventDestination") or {}
        kinds = {
            "EventBridgeDestination": "eventbridge",
            "SnsDestination": "sns",
            "CloudWatchDestination": "cloudwatch",
            "KinesisFirehoseDestination": "firehose",
        }
        kind = next((v for k, v in kinds.items() if k in destination), "unknown")
        return SesEventDestinationSpec(
            configuration_set=str(props["ConfigurationSetName"]),
            name=str(destination.get("Name") or logical_id),
            enabled=bool(destination.get("Enabled", False)),
            event_types=frozenset(str(t) for t in destination.get("MatchingEventTypes") or []),
            kind=kind,
        )

    def _kms_alias(self, logical_id: str, resource: dict[str, Any]) -> KmsAliasSpec:
        # The target is named by the key's logical id: moto gives the key an id only when it is made.
        target = (resource.get("Properties") or {}).get("TargetKeyId")
        key = target.get("Ref") if isinstance(target, dict) else None
        if (
            not isinstance(key, str)
            or self.template.body["Resources"].get(key, {}).get("Type") != "AWS::KMS::Key"
        ):
            raise TemplateError(
                f"{logical_id}: TargetKeyId must be !Ref of a key in the template to run locally"
            )
        return KmsAliasSpec(name=self.template.physical_name(logical_id), target=key)

    def _state_machine(self, logical_id: str) -> StateMachineSpec:
        t = self.template
        props = t.properties(logical_id)
        if "Definition" in props:
            definition = props["Definition"]
        elif isinstance(props.get("DefinitionUri"), str):
            definition = load_yaml((t.base_dir / props["DefinitionUri"]).read_text())
        else:
            raise TemplateError(
                f"{logical_id}: only a local DefinitionUri or an inline Definition is supported"
            )
        substitutions = {k: env_string(v) for k, v in (props.get("DefinitionSubstitutions") or {}).items()}
        role = (
            props.get("Role") or f"arn:aws:iam::{t.naming.account_id}:role/{t.physical_name(logical_id)}Role"
        )
        return StateMachineSpec(
            logical_id=logical_id,
            name=t.physical_name(logical_id),
            arn=t.arn(logical_id),
            definition=_substitute(definition, substitutions),
            role_arn=str(role),
            type=str(props.get("Type", "STANDARD")),
        )

    # ----------------------------------------------------------------------------- functions

    def _load_functions(self) -> None:
        t = self.template
        for logical_id in t.of_type("AWS::Serverless::Function"):
            props = t.properties(logical_id)
            code_uri = props.get("CodeUri")
            if not isinstance(code_uri, str):
                raise TemplateError(f"{logical_id}: CodeUri must be a local folder to run locally")
            variables = (props.get("Environment") or {}).get("Variables") or {}
            invoke_config = props.get("EventInvokeConfig") or {}
            on_failure = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
                "Destination"
            )
            self.functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=t.physical_name(logical_id),
                arn=t.arn(logical_id),
                code_dir=(t.base_dir / code_uri).resolve(),
                handler=str(props.get("Handler", "app.handler")),
                timeout=int(props.get("Timeout", 3)),
                memory_size=int(props.get("MemorySize", 128)),
                runtime=str(props.get("Runtime", "python3.13")),
                environment={k: env_string(v) for k, v in variables.items()},
                layer_dirs=tuple(self._layer_dirs(props.get("Layers") or [])),
                async_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
                async_on_failure_arn=str(on_failure) if on_failure else None,
                alias=str(props["AutoPublishAlias"]) if props.get("AutoPublishAlias") else None,
            )

    def _layer_dirs(self, layer_arns: list[Any]) -> list[Path]:
        t = self.template
        layers = {t.arn(k): k for k in t.of_type("AWS::Serverless::LayerVersion")}
        dirs = []
        for arn in layer_arns:
            logical_id = layers.get(str(arn))
            if logical_id is None:
                log.warning("layer %s is not a layer of this template; it is not on the local path", arn)
                continue
            content = (t.resources[logical_id].get("Properties") or {}).get("ContentUri")
            if isinstance(content, str):
                dirs.append((t.base_dir / content).resolve())
        return dirs

    # ----------------------------------------------------------------------------- HTTP APIs

    def _load_apis(self) -> None:
        t = self.template
        for logical_id in t.of_type("AWS::Serverless::HttpApi"):
            self.apis[logical_id] = self._api(logical_id, t.properties(logical_id).get("Auth") or {})
        # Routes without ApiId go to SAM's implicit API, configured by Globals.HttpApi.
        implicit_auth = t.resolve(((t.body.get("Globals") or {}).get("HttpApi") or {}).get("Auth") or {})
        self.apis.setdefault(IMPLICIT_HTTP_API, self._api(IMPLICIT_HTTP_API, implicit_auth))

    def _api(self, logical_id: str, auth: dict[str, Any]) -> HttpApiSpec:
        authorizers = {}
        for name, spec in (auth.get("Authorizers") or {}).items():
            if "FunctionArn" not in spec:
                log.warning("authorizer %s of %s is not a Lambda authorizer: not emulated", name, logical_id)
                continue
            identity = spec.get("Identity") or {}
            authorizers[name] = AuthorizerSpec(
                name=name,
                function_arn=str(spec["FunctionArn"]),
                identity_headers=tuple(str(h) for h in identity.get("Headers") or []),
                identity_query_strings=tuple(str(q) for q in identity.get("QueryStrings") or []),
                # No documented default for HTTP APIs' ReauthorizeEvery: without it, nothing is cached.
                ttl_seconds=int(identity.get("ReauthorizeEvery", 0)),
                simple_responses=bool(spec.get("EnableSimpleResponses", False)),
                payload_version=str(spec.get("AuthorizerPayloadFormatVersion", "2.0")),
            )
        return HttpApiSpec(
            logical_id=logical_id,
            api_id=self.template.api_id(logical_id),
            authorizers=authorizers,
            default_authorizer=auth.get("DefaultAuthorizer"),
        )

    # ----------------------------------------------------------------------------- events

    def _load_events(self) -> None:
        t = self.template
        for logical_id in self.functions:
            events = t.properties(logical_id).get("Events") or {}
            for event_name, event in events.items():
                kind = event.get("Type")
                props = event.get("Properties") or {}
                if kind == "HttpApi":
                    self.routes.append(self._route(logical_id, event_name, props))
                elif kind == "SQS":
                    self.sqs_mappings.append(
                        SqsMapping(
                            function=logical_id,
                            event=event_name,
                            queue_arn=str(props["Queue"]),
                            batch_size=int(props.get("BatchSize", 10)),
                            batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                            report_batch_item_failures="ReportBatchItemFailures"
                            in (props.get("FunctionResponseTypes") or []),
                            enabled=_enabled(props),
                        )
                    )
                elif kind in ("Schedule", "ScheduleV2"):
                    self.schedules.append(self._schedule(logical_id, event_name, str(kind), props))
                elif kind == "EventBridgeRule":
                    self.event_rules.append(self._event_rule(logical_id, event_name, props))
                elif kind == "DynamoDB":
                    self.stream_mappings.append(self._stream_mapping(logical_id, event_name, props))
                else:
                    log.warning(
                        "%s: event %s of type %s is not emulated locally", logical_id, event_name, kind
                    )

    def _event_rule(self, function: str, event_name: str, props: dict[str, Any]) -> EventRuleSpec:
        pattern = props.get("Pattern")
        try:
            checked = parse_pattern(json.dumps(pattern))
        except FilterPatternError as exc:
            raise TemplateError(f"{function}.{event_name}: {exc}") from exc
        return EventRuleSpec(
            function=function,
            event=event_name,
            pattern=checked,
            bus=str(props.get("EventBusName") or "default"),
            enabled=str(props.get("State", "ENABLED")).upper() == "ENABLED",
        )

    def _route(self, function: str, event_name: str, props: dict[str, Any]) -> HttpRoute:
        api = self._api_logical_id(props.get("ApiId"))
        method = str(props.get("Method", "ANY")).upper()
        path = str(props.get("Path", "$default"))
        if method not in HTTP_METHODS:
            raise TemplateError(f"{function}.{event_name}: unknown HTTP method {method}")
        auth = props.get("Auth") or {}
        authorizer = auth.get("Authorizer", self.apis[api].default_authorizer)
        if authorizer == "NONE":
            authorizer = None
        if authorizer is not None and authorizer not in self.apis[api].authorizers:
            raise TemplateError(
                f"{function}.{event_name}: authorizer {authorizer} is not a Lambda authorizer of {api}"
            )
        return HttpRoute(method=method, path=path, function=function, api=api, authorizer=authorizer)

    def _api_logical_id(self, api_id: Any) -> str:
        if api_id is None:
            return IMPLICIT_HTTP_API
        for logical_id, api in self.apis.items():
            if api.api_id == api_id:
                return logical_id
        raise TemplateError(f"HttpApi event refers to an unknown API {api_id!r}")

    def _stream_mapping(self, function: str, event_name: str, props: dict[str, Any]) -> StreamMapping:
        stream = str(props["Stream"])
        table = next(
            (
                t.logical_id
                for t in self.tables
                if stream.startswith(self.template.arn(t.logical_id) + "/stream/")
            ),
            None,
        )
        if table is None:
            raise TemplateError(
                f"{function}.{event_name}: the stream {stream} is not a table of this template"
            )
        unsupported = sorted(
            {"MaximumRecordAgeInSeconds", "ParallelizationFactor", "TumblingWindowInSeconds"} & set(props)
        )
        if unsupported:
            log.warning("%s.%s: %s not emulated locally", function, event_name, ", ".join(unsupported))
        try:
            filters = tuple(
                parse_pattern(str(f["Pattern"]))
                for f in (props.get("FilterCriteria") or {}).get("Filters") or []
            )
        except FilterPatternError as exc:
            raise TemplateError(f"{function}.{event_name}: {exc}") from exc
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return StreamMapping(
            function=function,
            event=event_name,
            table=table,
            starting_position=str(props.get("StartingPosition", "LATEST")).upper(),
            batch_size=int(props.get("BatchSize", 100)),
            batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
            bisect_on_error=str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            filters=filters,
            on_failure_arn=str(on_failure) if on_failure else None,
            enabled=_enabled(props),
        )

    def _schedule(self, function: str, event_name: str, kind: str, props: dict[str, Any]) -> ScheduleSpec:
        n = self.naming
        name = str(props.get("Name") or f"{n.stack_name}-{function}{event_name}")
        if kind == "Schedule":
            expression = props["Schedule"]
            resource = f"arn:aws:events:{n.region}:{n.account_id}:rule/{name}"
            timezone = "UTC"
        else:
            expression = props["ScheduleExpression"]
            group = props.get("GroupName", "default")
            resource = f"arn:aws:scheduler:{n.region}:{n.account_id}:schedule/{group}/{name}"
            timezone = str(props.get("ScheduleExpressionTimezone") or "UTC")
        raw_input = props.get("Input")
        return ScheduleSpec(
            function=function,
            event=event_name,
            kind=kind,
            expression=str(expression),
            input=None
            if raw_input is None
            else (raw_input if isinstance(raw_input, str) else json.dumps(raw_input)),
            enabled=_enabled(props),
            timezone=timezone,
            resource_arn=resource,
        )


def _enabled(props: dict[str, Any]) -> bool:
    if "State" in props:
        return str(props["State"]).upper() == "ENABLED"
    return str(props.get("Enabled", True)).lower() != "false"


def _substitute(value: Any, substitutions: dict[str, str]) -> Any:
    """SAM's DefinitionSubstitutions: ``${Name}`` in any string of the definition."""
    if isinstance(value, str):
        for key, replacement in substitutions.items():
            value = value.replace("${" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_substitute(v, substitutions) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, substitutions) for k, v in value.items()}
    return value


def shared_environment(functions: Mapping[str, FunctionSpec]) -> tuple[dict[str, str], list[str]]:
    """The union of the functions' variables (they share one process) and the conflicts found.

    Each conflict is a readable sentence; the first function (in template order) wins.
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    conflicts = []
    for spec in functions.values():
        for key, value in spec.environment.items():
            if key in merged and merged[key] != value:
                conflicts.append(
                    f"{key}: {owner[key]} sets {merged[key]!r}, {spec.logical_id} sets {value!r}"
                    f" (using {merged[key]!r})"
                )
                continue
            merged.setdefault(key, value)
            owner.setdefault(key, spec.logical_id)
    return merged, conflicts

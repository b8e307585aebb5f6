"""Load a CloudFormation/SAM template and resolve its intrinsic functions the way a deploy would.

Only what the local stack needs: parameters (defaults, overrides), pseudo parameters, conditions,
``Ref``/``Fn::GetAtt``/``Fn::Sub``/``Fn::If``/``Fn::Join``/``Fn::Select``/``Fn::Split``/
``Fn::Equals``/``Fn::Not``/``Fn::And``/``Fn::Or``/``Fn::FindInMap``/``Fn::Base64``/``Fn::GetAZs``,
and SAM's ``Globals``. Physical names are ``<stack>-<LogicalId>`` (lower-cased for buckets) unless
the resource names itself, so they are stable across restarts (CloudFormation adds a random suffix;
persistence here needs names that do not change).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
NO_VALUE = object()  # what ``Ref: AWS::NoValue`` resolves to; removed from the enclosing dict or list

_SHORT_TAGS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
    "ToJsonString",
    "Length",
)


class TemplateError(ValueError):
    """The template uses something this resolver does not support, or is inconsistent."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that turns ``!Ref x`` into ``{"Ref": x}`` and ``!Sub ...`` into ``{"Fn::Sub": ...}``."""


def _construct(node: yaml.Node, loader: _Loader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _add_tag(tag: str, key: str) -> None:
    def constructor(loader: _Loader, node: yaml.Node) -> Any:
        value = _construct(node, loader)
        if key == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {key: value}

    _Loader.add_constructor(f"!{tag}", constructor)


# YAML 1.1 would read keys and values like "On", "Off", "Yes", "No" as booleans; only true/false are
# booleans here, as in YAML 1.2 (an event named "Off" stays a string).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_add_tag("Ref", "Ref")
_add_tag("Condition", "Condition")
_add_tag("GetAtt", "Fn::GetAtt")
for _tag in _SHORT_TAGS:
    _add_tag(_tag, f"Fn::{_tag}")


def load_yaml(text: str) -> Any:
    """Parse CloudFormation YAML (or JSON), short-form intrinsic tags included."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass


@dataclass(frozen=True, slots=True)
class Naming:
    """Where the stack "lives": it decides every physical name and ARN the resolver produces."""

    stack_name: str = "mailroom-local"
    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID
    # Base URL of the emulated SQS endpoint; queue URLs point there so that boto3 and moto agree.
    sqs_endpoint: str | None = None


# Property that names each resource type's physical resource, when the template sets it.
_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SES::ReceiptRuleSet": "RuleSetName",
    "AWS::SES::ConfigurationSet": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Events::Rule": "Name",
    "AWS::KMS::Alias": "AliasName",
}


@dataclass
class Template:
    """A parsed template with its parameter values; ``resolve`` evaluates any part of it."""

    body: dict[str, Any]
    path: Path
    naming: Naming = field(default_factory=Naming)
    parameters: dict[str, str] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict, repr=False)
    _names: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, path: Path, *, naming: Naming | None = None, overrides: Mapping[str, str] | None = None
    ) -> Template:
        body = load_yaml(path.read_text())
        if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
            raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
        template = cls(body=body, path=path.resolve(), naming=naming or Naming())
        template.parameters = template._parameter_values(overrides or {})
        return template

    @property
    def base_dir(self) -> Path:
        """Relative ``CodeUri``/``DefinitionUri``/``ContentUri`` are relative to the template's folder."""
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources whose ``Condition`` holds (the ones a deploy would create)."""
        return {
            logical_id: resource
            for logical_id, resource in self.body["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") in types}

    def properties(self, logical_id: str, *, exclude: tuple[str, ...] = ("Policies",)) -> dict[str, Any]:
        """A resource's ``Properties``, fully resolved, with SAM ``Globals`` merged in.

        ``exclude`` skips properties the local stack never reads (IAM policies by default), so an
        intrinsic there that this resolver cannot evaluate does not stop the stack.
        """
        resource = self.body["Resources"][logical_id]
        props = {
            k: copy.deepcopy(v) for k, v in (resource.get("Properties") or {}).items() if k not in exclude
        }
        kind = str(resource.get("Type", ""))
        if kind.startswith("AWS::Serverless::"):
            globals_ = (self.body.get("Globals") or {}).get(kind.removeprefix("AWS::Serverless::"))
            if globals_:
                props = merge_globals(copy.deepcopy(globals_), props)
        resolved = self.resolve(props)
        return resolved if isinstance(resolved, dict) else {}

    # ----------------------------------------------------------------------------- parameters

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared = self.body.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"parameter override(s) not declared in the template: {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: pass it in the parameter overrides")
            values[name] = _scalar_string(value)
            allowed = spec.get("AllowedValues")
            if allowed is not None and values[name] not in [_scalar_string(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={values[name]!r} is not one of {allowed}")
        return values

    def _pseudo(self, name: str) -> Any:
        n = self.naming
        pseudo: dict[str, Any] = {
            "AWS::Region": n.region,
            "AWS::AccountId": n.account_id,
            "AWS::StackName": n.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{n.region}:{n.account_id}:stack/{n.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in pseudo:
            raise TemplateError(f"unknown pseudo parameter {name}")
        return pseudo[name]

    # ----------------------------------------------------------------------------- conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.body.get("Conditions") or {}
            if name not in definitions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(definitions[name]))
        return self._conditions[name]

    # ----------------------------------------------------------------------------- names

    def physical_name(self, logical_id: str) -> str:
        """The name a resource gets: its own name property if set, else ``<stack>-<LogicalId>``."""
        if logical_id not in self._names:
            resource = self.body["Resources"].get(logical_id)
            if resource is None:
                raise TemplateError(f"unknown resource {logical_id}")
            kind = str(resource.get("Type"))
            prop = _NAME_PROPERTY.get(kind)
            given = (resource.get("Properties") or {}).get(prop) if prop else None
            if given is not None:
                name = str(self.resolve(given))
            elif kind == "AWS::S3::Bucket":
                name = f"{self.naming.stack_name}-{logical_id}".lower()  # bucket names are lower-case
            elif kind == "AWS::SQS::Queue" and _truthy((resource.get("Properties") or {}).get("FifoQueue")):
                name = f"{self.naming.stack_name}-{logical_id}.fifo"
            else:
                name = f"{self.naming.stack_name}-{logical_id}"
            self._names[logical_id] = name
        return self._names[logical_id]

    def api_id(self, logical_id: str) -> str:
        """A stable 10-character id in API Gateway's alphabet, as ``Ref`` of an API returns."""
        return hashlib.sha256(f"{self.naming.stack_name}/{logical_id}".encode()).hexdigest()[:10]

    def arn(self, logical_id: str) -> str:
        kind = str(self.body["Resources"][logical_id].get("Type"))
        name = self.physical_name(logical_id)
        n = self.naming
        region, account = n.region, n.account_id
        formats = {
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{name}",
            "AWS::Scheduler::ScheduleGroup": f"arn:aws:scheduler:{region}:{account}:schedule-group/{name}",
            "AWS::Serverless::LayerVersion": f"arn:aws:lambda:{region}:{account}:layer:{name}:1",
            "AWS::SES::ConfigurationSet": f"arn:aws:ses:{region}:{account}:configuration-set/{name}",
        }
        if kind in formats:
            return formats[kind]
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
        return f"arn:aws:{service}:{region}:{account}:{logical_id}/{name}"

    def queue_url(self, logical_id: str) -> str:
        name = self.physical_name(logical_id)
        base = self.naming.sqs_endpoint or f"https://sqs.{self.naming.region}.amazonaws.com"
        return f"{base.rstrip('/')}/{self.naming.account_id}/{name}"

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name.endswith(".Alias"):
            return self.function_alias_arn(name.removesuffix(".Alias"))
        resource = self.body["Resources"].get(name)
        if resource is None:
            raise TemplateError(f"Ref to unknown parameter or resource {name}")
        kind = resource.get("Type")
        if kind == "AWS::SQS::Queue":
            return self.queue_url(name)
        if kind in (
            "AWS::Serverless::StateMachine",
            "AWS::StepFunctions::StateMachine",
            "AWS::SNS::Topic",
            "AWS::Serverless::LayerVersion",
        ):
            return self.arn(name)
        if kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api"):
            return self.api_id(name)
        return self.physical_name(name)

    def function_alias_arn(self, logical_id: str) -> str:
        """SAM's ``!Ref <function>.Alias``: the ARN of the alias ``AutoPublishAlias`` names (qualified
        ARNs reach the function locally, where there are no versions)."""
        resource = self.body["Resources"].get(logical_id) or {}
        if resource.get("Type") != "AWS::Serverless::Function":
            raise TemplateError(f"Ref {logical_id}.Alias: not a function")
        globals_ = (self.body.get("Globals") or {}).get("Function") or {}
        alias = (resource.get("Properties") or {}).get("AutoPublishAlias", globals_.get("AutoPublishAlias"))
        if not alias:
            raise TemplateError(f"Ref {logical_id}.Alias: the function has no AutoPublishAlias")
        return f"{self.arn(logical_id)}:{self.resolve(alias)}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.body["Resources"].get(logical_id)
        if resource is None:
            raise TemplateError(f"Fn::GetAtt of unknown resource {logical_id}")
        kind = resource.get("Type")
        name = self.physical_name(logical_id)
        if attribute == "Arn" or (kind == "AWS::SNS::Topic" and attribute == "TopicArn"):
            return self.arn(logical_id)
        special: dict[tuple[str, str], Any] = {
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): lambda: self.queue_url(logical_id),
            ("AWS::Serverless::StateMachine", "Name"): name,
            ("AWS::StepFunctions::StateMachine", "Name"): name,
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::DynamoDB::Table", "StreamArn"): lambda: f"{self.arn(logical_id)}/stream/local",
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{self.naming.region}.amazonaws.com",
            ("AWS::IAM::Role", "RoleId"): f"AROA{name.upper()[:16]}",
            ("AWS::Serverless::HttpApi", "ApiEndpoint"): lambda: (
                f"https://{self.api_id(logical_id)}.execute-api.{self.naming.region}.amazonaws.com"
            ),
        }
        value = special.get((str(kind), attribute))
        if value is None:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not supported locally")
        return value() if callable(value) else value

    # ----------------------------------------------------------------------------- resolution

    def resolve(self, value: Any) -> Any:
        """Evaluate every intrinsic function in ``value`` (a template fragment)."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else [self.resolve(a) for a in arg]
            return self.get_att(str(parts[0]), str(parts[1]))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return _scalar_string(left) == _scalar_string(right)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(_scalar_string(i) for i in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            delimiter, text = arg
            return str(self.resolve(text)).split(str(delimiter))
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(a) for a in arg[:3])
            return self.resolve(self.body["Mappings"][mapping][top][second])
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if key == "Fn::GetAZs":
            return [f"{self.naming.region}{zone}" for zone in "abc"]
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if key == "Fn::Length":
            return len(self.resolve(arg))
        raise TemplateError(f"{key} is not supported by the local resolver")

    _SUB_RE = re.compile(r"\$\{([^}]+)\}")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is the escape for a literal ${Literal}
            if name in variables:
                return _scalar_string(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return _scalar_string(self.get_att(logical_id, attribute))
            return _scalar_string(self.ref(name))

        return self._SUB_RE.sub(replace, str(text))


def merge_globals(globals_: Any, own: Any) -> Any:
    """SAM's Globals rule: maps merge (the resource wins), lists add up (globals first), else the resource."""
    if isinstance(globals_, dict) and isinstance(own, dict):
        merged = dict(globals_)
        for key, value in own.items():
            merged[key] = merge_globals(globals_[key], value) if key in globals_ else value
        return merged
    if isinstance(globals_, list) and isinstance(own, list):
        return globals_ + own
    return own


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _scalar_string(value: Any) -> str:
    """How CloudFormation turns a scalar into a string (booleans are lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def env_string(value: Any) -> str:
    """A resolved value as a Lambda environment variable (always a string)."""
    if isinstance(value, dict | list):
        raise TemplateError(f"environment variable values must be scalars, got {value!r}")
    return _scalar_string(value)

"""The local runtime's template reader: intrinsic functions, SAM Globals, and the specs it derives."""

from pathlib import Path

import pytest

from local.stack import Stack, shared_environment
from local.template import Naming, Template, TemplateError, load_yaml, merge_globals

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "local" / "template.yaml"
NAMING = Naming(stack_name="mailroom-local", region="eu-west-1", sqs_endpoint="http://127.0.0.1:4566")


def template_from(
    text: str, overrides: dict[str, str] | None = None, tmp_path: Path | None = None
) -> Template:
    path = (tmp_path or Path("/tmp")) / "template.yaml"
    path.write_text(text)
    return Template.load(path, naming=NAMING, overrides=overrides)


BASE = """
Parameters:
  Stage: {Type: String, Default: dev}
  Size: {Type: Number, Default: 3}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsSmall: !Not [!Equals [!Ref Size, 10]]
  Both: !And [!Condition IsProd, !Condition IsSmall]
Resources:
  Table: {Type: AWS::DynamoDB::Table}
  Queue: {Type: AWS::SQS::Queue}
  Fifo: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}
  Bucket: {Type: AWS::S3::Bucket}
  Named: {Type: AWS::S3::Bucket, Properties: {BucketName: !Sub "explicit-${Stage}"}}
  Fn: {Type: AWS::Serverless::Function}
  Machine: {Type: AWS::Serverless::StateMachine}
  ProdOnly: {Type: AWS::S3::Bucket, Condition: IsProd}
"""


def test_short_form_tags_become_long_form(tmp_path):
    loaded = load_yaml(
        "a: !Ref X\nb: !GetAtt Y.Arn\nc: !Sub 'x-${Y}'\nd: !If [C, 1, 2]\ne: !Join [',', [a, b]]\n"
    )
    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Y", "Arn"]},
        "c": {"Fn::Sub": "x-${Y}"},
        "d": {"Fn::If": ["C", 1, 2]},
        "e": {"Fn::Join": [",", ["a", "b"]]},
    }


def test_only_true_and_false_are_booleans():
    assert load_yaml("Off: yes\nOn: no\nt: true\nf: False") == {
        "Off": "yes",
        "On": "no",
        "t": True,
        "f": False,
    }


def test_refs_and_attributes_resolve_to_physical_names_and_arns(tmp_path):
    t = template_from(BASE, tmp_path=tmp_path)
    assert t.resolve({"Ref": "Table"}) == "mailroom-local-Table"
    assert t.resolve({"Ref": "Queue"}) == "http://127.0.0.1:4566/123456789012/mailroom-local-Queue"
    assert (
        t.resolve({"Fn::GetAtt": ["Queue", "Arn"]})
        == "arn:aws:sqs:eu-west-1:123456789012:mailroom-local-Queue"
    )
    assert t.resolve({"Fn::GetAtt": ["Fifo", "QueueName"]}) == "mailroom-local-Fifo.fifo"
    assert t.resolve({"Ref": "Bucket"}) == "mailroom-local-bucket"
    assert t.resolve({"Ref": "Named"}) == "explicit-dev"
    assert t.resolve({"Fn::GetAtt": "Bucket.Arn"}) == "arn:aws:s3:::mailroom-local-bucket"
    assert (
        t.resolve({"Fn::GetAtt": ["Table", "Arn"]})
        == "arn:aws:dynamodb:eu-west-1:123456789012:table/mailroom-local-Table"
    )
    assert (
        t.resolve({"Fn::GetAtt": ["Fn", "Arn"]})
        == "arn:aws:lambda:eu-west-1:123456789012:function:mailroom-local-Fn"
    )
    assert (
        t.resolve({"Ref": "Machine"})
        == "arn:aws:states:eu-west-1:123456789012:stateMachine:mailroom-local-Machine"
    )
    assert t.resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    assert t.resolve({"Ref": "Size"}) == "3"


def test_sub_join_select_split_and_conditions(tmp_path):
    t = template_from(BASE, tmp_path=tmp_path)
    assert t.resolve({"Fn::Sub": "${AWS::StackName}/${Stage}/${Table}/${Queue.Arn}/${!Literal}"}) == (
        "mailroom-local/dev/mailroom-local-Table/arn:aws:sqs:eu-west-1:123456789012:mailroom-local-Queue/${Literal}"
    )
    assert t.resolve({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Size"}}]}) == "3-dev"
    assert t.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 7]]}) == "a-dev-7"
    assert t.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert t.resolve({"Fn::If": ["IsProd", "p", "np"]}) == "np"
    assert t.condition("IsSmall") is True
    assert t.condition("Both") is False
    assert "ProdOnly" not in t.resources


def test_no_value_removes_the_key_or_item(tmp_path):
    t = template_from(BASE, tmp_path=tmp_path)
    value = {
        "Keep": 1,
        "Drop": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Ref": "AWS::NoValue"}],
    }
    assert t.resolve(value) == {"Keep": 1, "List": ["a"]}


def test_parameter_overrides_and_their_checks(tmp_path):
    t = template_from(BASE, {"Stage": "prod"}, tmp_path=tmp_path)
    assert t.condition("IsProd") is True
    assert "ProdOnly" in t.resources
    with pytest.raises(TemplateError, match="not declared"):
        template_from(BASE, {"Nope": "1"}, tmp_path=tmp_path)
    allowed = BASE.replace("Default: dev}", "Default: dev, AllowedValues: [dev, prod]}")
    with pytest.raises(TemplateError, match="not one of"):
        template_from(allowed, {"Stage": "qa"}, tmp_path=tmp_path)


def test_unsupported_attribute_is_a_clear_error(tmp_path):
    t = template_from(BASE, tmp_path=tmp_path)
    with pytest.raises(TemplateError, match=r"Table\.Nope"):
        t.resolve({"Fn::GetAtt": ["Table", "Nope"]})
    with pytest.raises(TemplateError, match="unknown parameter or resource"):
        t.resolve({"Ref": "Missing"})


def test_globals_merge_like_sam():
    merged = merge_globals(
        {"Timeout": 3, "Layers": ["a"], "Environment": {"Variables": {"A": "g", "B": "g"}}},
        {"Timeout": 9, "Layers": ["b"], "Environment": {"Variables": {"B": "f", "C": "f"}}},
    )
    assert merged == {
        "Timeout": 9,
        "Layers": ["a", "b"],
        "Environment": {"Variables": {"A": "g", "B": "f", "C": "f"}},
    }


def test_fixture_stack_functions_events_and_resources():
    stack = Stack.load(FIXTURE, naming=NAMING)
    echo = stack.functions["Echo"]
    assert echo.name == "mailroom-local-Echo"
    assert echo.timeout == 5 and echo.memory_size == 256
    assert echo.module_file == REPO / "tests/fixtures/local/functions/echo/app.py"
    assert echo.layer_dirs == (REPO / "tests/fixtures/local/layer",)
    assert echo.environment["FIXTURE_GREETING"] == "hello-test"
    assert echo.environment["FIXTURE_OWN"] == "echo-only"
    assert stack.functions["Slow"].timeout == 1

    routes = {(r.method, r.path): r for r in stack.routes}
    assert routes[("GET", "/items/{id}")].authorizer == "Token"
    assert routes[("ANY", "/public")].authorizer is None
    authorizer = stack.apis["Api"].authorizers["Token"]
    assert authorizer.ttl_seconds == 60
    assert authorizer.identity_headers == ("Authorization",)
    assert stack.function_by_arn(authorizer.function_arn).logical_id == "Authorizer"

    (mapping,) = stack.sqs_mappings
    assert (mapping.function, mapping.batch_size, mapping.report_batch_item_failures) == ("Batch", 5, True)
    assert stack.queue_by_arn(mapping.queue_arn).name == "mailroom-local-Jobs"
    jobs = next(q for q in stack.queues if q.logical_id == "Jobs")
    assert jobs.properties["RedrivePolicy"]["deadLetterTargetArn"].endswith(":mailroom-local-DeadLetters")

    schedules = {s.event: s for s in stack.schedules}
    assert schedules["EveryFiveMinutes"].expression == "rate(5 minutes)"
    assert schedules["Nightly"].input == '{"job": "nightly"}'
    assert schedules["Off"].enabled is False

    assert [r.rule["Name"] for r in stack.receipt_rules] == ["inbound", "subdomains", "disabled"]
    (machine,) = stack.state_machines
    assert machine.definition["States"]["Plan"]["Parameters"]["FunctionName"] == stack.functions["Plan"].arn
    assert machine.definition["States"]["Each"]["Iterator"]["States"]["Double"]["Resource"] == (
        stack.functions["Double"].arn
    )
    assert [t.name for t in stack.tables] == ["mailroom-local-Table"]  # ProdOnlyTable's condition is false


def test_repository_template_loads():
    stack = Stack.load(REPO / "template.yaml")
    assert stack.functions, "the template declares functions"
    env, conflicts = shared_environment(stack.functions)
    assert conflicts == []
    assert env["MAILROOM_TABLE_NAME"] == "mailroom-local-Table"
    assert env["MAILROOM_AUTH_CACHE_TTL"] == "30"  # the TokenCacheTtl parameter's default
    # The functions authenticate requests themselves: API Gateway runs no authorizer on any route,
    # and every route takes every method (the function answers a wrong one with 405).
    assert stack.apis["HttpApi"].authorizers == {}
    assert stack.routes and all(r.authorizer is None and r.method == "ANY" for r in stack.routes)


def test_environment_conflicts_are_reported():
    stack = Stack.load(FIXTURE, naming=NAMING)
    functions = dict(stack.functions)
    from dataclasses import replace

    functions["Echo"] = replace(
        functions["Echo"], environment={**functions["Echo"].environment, "FIXTURE_SHARED": "different"}
    )
    env, conflicts = shared_environment(functions)
    assert env["FIXTURE_SHARED"] == "from-globals"
    assert len(conflicts) == 1 and "FIXTURE_SHARED" in conflicts[0] and "Echo" in conflicts[0]

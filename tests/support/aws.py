"""AWS fixtures built from template.yaml, so tests use the key schema that deploys."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !If, ...) as plain data."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {suffix: loader.construct_mapping(node, deep=True)}


_TemplateLoader.add_multi_constructor("!", _any_tag)


@functools.cache
def _parsed(text: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(text, Loader=_TemplateLoader)
    return data


def template() -> dict[str, Any]:
    """The template as data: parsed once per content (it is thousands of lines and most tests build
    their table from it), a copy per caller so nobody changes what the next test reads."""
    return copy.deepcopy(_parsed(TEMPLATE.read_text()))


def create_table_from_template(client: Any, table_name: str, logical_id: str = "Table") -> None:
    props = template()["Resources"][logical_id]["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)

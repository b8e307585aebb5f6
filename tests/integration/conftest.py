"""Integration tests: handlers invoked with real-shaped events, AWS emulated in-process by moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store.table import Table
from tests.support.aws import create_table_from_template

TABLE_NAME = "mailroom-test-Table"


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "MAILROOM_TABLE_NAME": TABLE_NAME,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    get_settings.cache_clear()
    aws.reset_clients()
    with mock_aws():
        create_table_from_template(aws.dynamodb(), TABLE_NAME)
        yield
    aws.reset_clients()
    get_settings.cache_clear()


@pytest.fixture
def table(moto_env: None) -> Table:
    return Table()


@pytest.fixture
def org(table: Table) -> NewOrganization:
    return create_organization(table, name="Acme")


@pytest.fixture
def other_org(table: Table) -> NewOrganization:
    return create_organization(table, name="Globex")

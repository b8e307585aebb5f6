"""Integration tests: handlers invoked with real-shaped events, AWS emulated in-process by moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from local.moto_patches import install as install_moto_fixes
from mailroom.services.organizations import NewOrganization, create_organization
from mailroom.settings import get_settings
from mailroom.store import aws
from mailroom.store.table import Table
from tests.support.aws import create_table_from_template
from tests.support.dovecot import dovecot_server  # noqa: F401 - a fixture: registered by importing it

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
    install_moto_fixes()
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


@pytest.fixture
def dns_server(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """nsd on loopback for the zone ``example.com``, used as the verification resolver."""
    from tests.support.dns_server import authoritative_dns

    with authoritative_dns(tmp_path_factory.mktemp("nsd"), "example.com") as server:
        server.serve([])
        monkeypatch.setenv("MAILROOM_DNS_RESOLVER", server.address)
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()

"""``mailroom admin``: the operator CLI, run through ``main([...])`` against moto.

Most tests use the in-process mock (``moto_env``: the template's table, MAILROOM_TABLE_NAME set).
The ``--local`` tests run a real moto server on loopback, as the local stack does, and reach it only
through the ``local.env`` file the CLI is pointed at.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mailroom.cli import main
from mailroom.domain.tokens import TokenType, parse_token
from mailroom.settings import get_settings
from mailroom.store import aws, tokens
from mailroom.store.table import Table
from tests.integration.conftest import TABLE_NAME
from tests.support.aws import create_table_from_template

ORG_ID_RE = re.compile(r"^organization\s+(org_[0-9A-Z]{26})$", re.MULTILINE)
TOKEN_RE = re.compile(r"^admin token\s+(mr_live_\S+)$", re.MULTILINE)


@pytest.fixture(autouse=True)
def environment_is_restored() -> Iterator[None]:
    """``main`` loads env files into os.environ and must put it back when the command ends."""

    def snapshot() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # pytest's own

    before = snapshot()
    yield
    assert snapshot() == before


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def create_org(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    status, out, err = run(capsys, "admin", "create-org", *argv)
    assert status == 0, err
    org_id, token = ORG_ID_RE.search(out), TOKEN_RE.search(out)
    assert org_id and token, out
    return org_id.group(1), token.group(1)


def test_create_org_prints_an_id_and_a_token_stored_only_as_its_hash(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id, token = create_org(capsys, "--name", "Acme")

    assert parse_token(token) is TokenType.OPS  # well formed, checksum valid
    stored = tokens.find_by_hash(Table(), hashlib.sha256(token.encode()).hexdigest())
    assert stored is not None
    assert stored["org_id"] == org_id
    assert stored["name"] == "admin"
    assert "tokens:manage" in stored["scopes"]
    assert token not in json.dumps(stored)  # the plaintext itself is nowhere in the item


def test_create_org_applies_limits_over_the_defaults(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys, "admin", "create-org", "--name", "Globex", "--limits", "mailboxes=5, domains=2", "--json"
    )
    assert status == 0, err
    created = json.loads(out)
    assert created["admin_token"].startswith("mr_live_")
    limits = created["organization"]["limits"]
    assert limits["mailboxes"] == 5
    assert limits["domains"] == 2
    assert limits["aliases"] == 500  # untouched default


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ("widgets=3", "unknown limit 'widgets'"),
        ("mailboxes=many", "whole number"),
        ("mailboxes", "NAME=NUMBER"),
    ],
)
def test_create_org_refuses_bad_limits(
    moto_env: None, capsys: pytest.CaptureFixture[str], limits: str, message: str
) -> None:
    status, out, err = run(capsys, "admin", "create-org", "--name", "Acme", "--limits", limits)
    assert status == 2
    assert message in err
    assert out == ""


def test_create_org_refuses_a_blank_name(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "admin", "create-org", "--name", "   ")
    assert status == 2
    assert "1 to 100 characters" in err
    assert out == ""


def test_list_orgs_shows_every_organization_with_its_counters(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    acme, _ = create_org(capsys, "--name", "Acme")
    globex, _ = create_org(capsys, "--name", "Globex")

    status, out, err = run(capsys, "admin", "list-orgs")
    assert status == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "CREATED_AT", "MAILBOXES"]
    by_id = {row.split()[0]: row.split() for row in rows}
    assert set(by_id) == {acme, globex}
    assert by_id[acme][1] == "Acme"
    tokens_column = header.split().index("TOKENS")
    assert by_id[acme][tokens_column] == "1"  # the admin token is counted


def test_list_orgs_json_follows_every_page(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    created = {create_org(capsys, "--name", f"Org {n}")[0] for n in range(5)}

    # Two per page: three GSI queries, the last one partial.
    status, out, err = run(capsys, "admin", "list-orgs", "--json", "--page-size", "2")
    assert status == 0, err
    listed: list[dict[str, Any]] = json.loads(out)
    assert [o["id"] for o in listed] == sorted(created)  # GSI1 order: ORG#<ulid>, i.e. creation order
    assert len(listed) == len(created)  # no page read twice
    first = listed[0]
    assert first["name"] == "Org 0"
    assert first["counters"]["token_count"] == 1
    assert first["counters"]["mailbox_count"] == 0
    assert first["created_at"].endswith("Z")


def test_list_orgs_of_an_empty_table_is_an_empty_json_array(
    moto_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "admin", "list-orgs", "--json")
    assert status == 0
    assert json.loads(out) == []


def test_a_missing_table_is_exit_2_with_its_name(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "admin", "list-orgs", "--table", "no-such-table")
    assert status == 2
    assert "table no-such-table does not exist" in err
    assert out == ""


def test_no_table_at_all_is_exit_2_saying_how_to_name_one(
    moto_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILROOM_TABLE_NAME")
    status, out, err = run(capsys, "admin", "create-org", "--name", "Acme")
    assert status == 2
    assert "no table to act on" in err
    assert "--stack-name" in err
    assert out == ""


def test_table_by_name_overrides_the_environment(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    create_table_from_template(aws.dynamodb(), "mailroom-other")
    org_id, _ = create_org(capsys, "--name", "Elsewhere", "--table", "mailroom-other")

    _, default_listing, _ = run(capsys, "admin", "list-orgs", "--json")
    _, other_listing, _ = run(capsys, "admin", "list-orgs", "--json", "--table", "mailroom-other")
    assert json.loads(default_listing) == []
    assert [o["id"] for o in json.loads(other_listing)] == [org_id]


def test_stack_name_resolves_the_table_output(moto_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    stack = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"TableName": {"Value": TABLE_NAME}},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="mailroom-test", TemplateBody=json.dumps(stack)
    )
    org_id, _ = create_org(capsys, "--name", "Acme", "--stack-name", "mailroom-test")
    assert any(o["id"] == org_id for o in json.loads(run(capsys, "admin", "list-orgs", "--json")[1]))

    status, _, err = run(capsys, "admin", "list-orgs", "--stack-name", "mailroom-missing")
    assert status == 2
    assert "stack mailroom-missing not found" in err


def test_env_file_sets_the_target_before_settings_are_read(
    moto_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    create_table_from_template(aws.dynamodb(), "mailroom-from-file")
    assert get_settings().table_name == TABLE_NAME  # cached now: the CLI must not act on this one
    env_file = tmp_path / "target.env"
    env_file.write_text(
        '# written by hand\n\nexport MAILROOM_TABLE_NAME="mailroom-from-file"\nAWS_REGION=us-east-1\n'
    )
    org_id, _ = create_org(capsys, "--name", "Acme", "--env-file", str(env_file))

    # The file's values were the command's only: the caller's settings are its own again.
    assert "mailroom-from-file" not in os.environ.values()
    assert get_settings().table_name == TABLE_NAME
    assert Table("mailroom-from-file").get(f"ORG#{org_id}", "#ORG") is not None
    assert Table(TABLE_NAME).get(f"ORG#{org_id}", "#ORG") is None


def test_env_file_errors_are_exit_2(
    moto_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = run(capsys, "admin", "list-orgs", "--env-file", str(tmp_path / "absent.env"))
    assert status == 2
    assert "absent.env does not exist" in err

    broken = tmp_path / "broken.env"
    broken.write_text("AWS_REGION=us-east-1\nthis is not an assignment\n")
    status, _, err = run(capsys, "admin", "list-orgs", "--env-file", str(broken))
    assert status == 2
    assert "broken.env:2: expected KEY=VALUE" in err


# --- --local: a moto server on loopback, found through $MAILROOM_STATE_DIR/local.env --------------


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # An in-process server keeps moto's global backends: start from (and leave) an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        urllib.request.urlopen(
            urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10
        ).close()
        server.stop()


def write_local_env(state_dir: Path, endpoint: str, table_name: str) -> None:
    """What the local stack writes when it starts."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "local.env").write_text(
        f"AWS_ENDPOINT_URL={endpoint}\n"
        "AWS_REGION=us-east-1\n"
        "AWS_ACCESS_KEY_ID=testing\n"
        "AWS_SECRET_ACCESS_KEY=testing\n"
        f"MAILROOM_TABLE_NAME={table_name}\n"
    )


def test_local_reads_the_state_dir_env_file(
    moto_server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "MAILROOM_TABLE_NAME", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_table_from_template(client, "mailroom-local")
    write_local_env(tmp_path / "state", moto_server, "mailroom-local")
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "state"))

    org_id, token = create_org(capsys, "--name", "Local Co", "--local")
    status, out, err = run(capsys, "admin", "list-orgs", "--local", "--json")
    assert status == 0, err
    assert [o["id"] for o in json.loads(out)] == [org_id]
    # The token landed in the server's table, found by hash with a plain client.
    found = client.query(
        TableName="mailroom-local",
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"TOKEN#{hashlib.sha256(token.encode()).hexdigest()}"}},
    )["Items"]
    assert [item["org_id"]["S"] for item in found] == [org_id]


def test_local_finds_the_state_dir_in_a_parent_folder(
    moto_server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILROOM_STATE_DIR", raising=False)
    create_table_from_template(
        boto3.client(
            "dynamodb",
            endpoint_url=moto_server,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ),
        "mailroom-local",
    )
    write_local_env(tmp_path / ".mailroom", moto_server, "mailroom-local")
    (tmp_path / "functions" / "tokens").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "functions" / "tokens")

    status, out, err = run(capsys, "admin", "list-orgs", "--local", "--json")
    assert status == 0, err
    assert json.loads(out) == []


def test_local_without_a_running_stack_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "never-started"))
    status, _, err = run(capsys, "admin", "list-orgs", "--local")
    assert status == 2
    assert "no local stack state" in err

    # State left behind by a stack that is no longer running: nothing listens on its port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    write_local_env(tmp_path / "stopped", f"http://127.0.0.1:{closed_port}", "mailroom-local")
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "stopped"))
    status, _, err = run(capsys, "admin", "list-orgs", "--local")
    assert status == 2
    assert "cannot reach" in err
    assert "make run" in err

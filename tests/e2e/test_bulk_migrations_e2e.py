"""Bulk migrations end to end: a real Dovecot on loopback with three accounts, the local stack
running the migration state machine on moto's interpreter, httpx against the HTTP API (the local
gateway routes /api/v1/migrations/bulk to its own function, as API Gateway does).

An organization made by the operator CLI with ``migration_concurrency=2`` starts a batch of three
accounts into three mailboxes: two jobs start at once, the third when one of them ends (the end
of a job ticks its batch from the worker), and every job imports exactly what its source holds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, create_org, start_stack
from tests.support.api_http import data, post
from tests.support.dovecot import DovecotServer

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("bulk-migrations")]
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-42"
DEADLINE = 180.0  # seconds the batch may take here before the test gives up
SEEDED = {"INBOX": (12, 7, 9), "Work": (5, 0, 11)}  # per account: messages per folder


@dataclass
class World:
    stack: LocalStackProcess
    admin: httpx.Client
    server: DovecotServer
    domain: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with DovecotServer() as server:
        env = {
            "MAILROOM_IMAP_CA_FILE": str(server.ca_file),
            "MAILROOM_IMAP_TIMEOUT_SECONDS": "10",
            "MAILROOM_MIGRATION_BATCH_SIZE": "5",
            "MAILROOM_MIGRATION_WINDOW_BATCHES": "2",
            "MAILROOM_MIGRATION_MAP_CONCURRENCY": "2",
        }
        with start_stack(tmp_path_factory.mktemp("bulk-migration-state"), stop_timeout=90, **env) as stack:
            org = create_org(stack, f"Bulk {uuid.uuid4().hex[:6]}", limits="migration_concurrency=2")
            headers = {"Authorization": f"Bearer {org['admin_token']}"}
            with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as admin:
                domain = f"bulk-{uuid.uuid4().hex[:8]}.example.com"
                data(post(admin, "/api/v1/domains", {"domain": domain}), 201)
                yield World(stack, admin, server, domain)


def executions(world: World) -> dict[str, Any]:
    """Every execution of the migration machine by name (``<job id>-a<attempt>-s<segment>``)."""
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=world.stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-migration")]
    listed = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], maxResults=1000)["executions"]
    return {e["name"]: e for e in listed}


def test_a_batch_of_three_accounts_runs_two_at_a_time_and_imports_everything(world: World) -> None:
    accounts = []
    for index in range(3):
        user, password = world.server.new_user("bulk")
        for folder, counts in SEEDED.items():
            messages = [
                b"From: a@example.net\r\nSubject: %s %d\r\nMessage-ID: <%s-%d-%s@example.net>\r\n\r\nhi\r\n"
                % (folder.encode(), n, folder.encode(), n, user.encode())
                for n in range(counts[index])
            ]
            if messages:
                world.server.seed(user, folder, messages)
        mailbox = data(
            post(
                world.admin,
                "/api/v1/mailboxes",
                {"local_part": f"moved{index}", "domain": world.domain, "password": PASSWORD},
            ),
            201,
        )
        accounts.append((user, password, mailbox))
    rows = "\n".join(f"{user},{password},{mailbox['address']}" for user, password, mailbox in accounts)
    server = {"source_host": "127.0.0.1", "source_port": world.server.ssl_port, "source_security": "ssl"}

    preview = post(world.admin, "/api/v1/migrations/bulk/preview", {"data": rows, **server})
    assert preview.status_code == 200, preview.text
    assert preview.json()["counts"]["valid"] == 3 and preview.json()["limits"]["concurrent_per_account"] == 2
    # Every row's source counted and sized (Dovecot offers STATUS=SIZE) by the preview's probe.
    basis = preview.json()["time_estimate"]["basis"]
    assert (basis["messages"], basis["size"]) == ("counted", "counted"), basis
    assert [row["source_size"]["messages"] for row in preview.json()["rows"]] == [
        sum(counts[index] for counts in SEEDED.values()) for index in range(3)
    ]

    started = post(world.admin, "/api/v1/migrations/bulk", {"data": rows, "name": "Three accounts", **server})
    batch = data(started, 201)
    assert all(password not in started.text for _, password, _ in accounts)
    assert batch["total_jobs"] == 3 and batch["counts"]["queued"] == 1
    assert [j["queued"] for j in batch["jobs"]] == [False, False, True]

    deadline = time.monotonic() + DEADLINE
    while True:
        view = data(world.admin.get(f"/api/v1/migrations/bulk/{batch['id']}"))
        running = [j for j in view["jobs"] if not j["queued"] and j["finished_at"] is None]
        assert len(running) <= 2, view["jobs"]
        if view["poll_hint_seconds"] is None or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert view["status"] == "completed", view
    for index, (job, (_user, _password, mailbox)) in enumerate(zip(view["jobs"], accounts, strict=True)):
        expected = sum(counts[index] for counts in SEEDED.values())
        assert job["mailbox_id"] == mailbox["id"]
        assert (job["status"], job["total_messages"], job["imported_messages"], job["failed_messages"]) == (
            "completed",
            expected,
            expected,
            0,
        ), job
    assert view["imported_messages"] == sum(sum(counts) for counts in SEEDED.values())

    # The three completed jobs are now the deployment's measured throughput.
    again = post(world.admin, "/api/v1/migrations/bulk/preview", {"data": rows, **server})
    assert again.status_code == 200, again.text
    measured = again.json()["time_estimate"]["basis"]
    assert measured["throughput"] == "measured" and measured["jobs_measured"] == basis["jobs_measured"] + 3

    # The third job started only once one of the first two had ended (its end started it), and
    # every job ran in one execution of the state machine that succeeded.
    first, second, third = view["jobs"]
    assert third["started_at"] >= min(first["finished_at"], second["finished_at"])
    runs = executions(world)
    assert all(runs[f"{j['id']}-a1-s0"]["status"] == "SUCCEEDED" for j in view["jobs"])

    # The mail is in each mailbox, per folder, through the single migrations API's view of the job.
    for index, job in enumerate(view["jobs"]):
        single = data(world.admin.get(f"/api/v1/migrations/{job['id']}"))
        assert single["batch_id"] == batch["id"]
        folders = {f["name"]: f["imported"] for f in single["folders"]}
        assert folders == {name: counts[index] for name, counts in SEEDED.items() if counts[index]}

    listed = world.admin.get("/api/v1/migrations/bulk").json()
    assert [b["id"] for b in listed["data"]] == [batch["id"]] and listed["data"][0]["status"] == "completed"
    assert world.admin.delete(f"/api/v1/migrations/bulk/{batch['id']}").status_code == 204
    assert world.admin.get(f"/api/v1/migrations/{view['jobs'][0]['id']}").status_code == 404

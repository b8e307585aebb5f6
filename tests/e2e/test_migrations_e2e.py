"""IMAP migrations end to end: a real Dovecot on loopback seeded with several folders and a few
hundred messages (non-ASCII folder names, a large attachment, malformed messages), the local stack
running statemachines/migration.asl.json on moto's interpreter with the worker's Lambda tasks, and
httpx against the HTTP API.

The stack runs with batches of 20 UIDs, windows of 3 batches and 2 windows per execution, so a
migration takes dozens of Map iterations and continues as new executions several times.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, create_org, free_port, start_stack
from tests.support.dovecot import DovecotServer, SeededMessage, seed_standard_corpus

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("migrations")]
PASSWORD = "Correct-Horse-42"
DEADLINE = 120.0  # seconds one migration may take here before the test gives up
TARGET_FOLDER = {"Junk": "Spam"}


@dataclass
class World:
    stack: LocalStackProcess
    admin: httpx.Client
    server: DovecotServer
    user: str
    password: str
    seeded: dict[str, list[SeededMessage]]
    domain: str

    @property
    def total(self) -> int:
        return sum(len(messages) for messages in self.seeded.values())

    def source(self, **overrides: Any) -> dict[str, Any]:
        return {
            "source_host": "127.0.0.1",
            "source_port": self.server.ssl_port,
            "source_security": "ssl",
            "source_email": self.user,
            "source_password": self.password,
            **overrides,
        }


def post(client: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["data"]


def code(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json().get("error", {}).get("code")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer() as server:
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dovecot: DovecotServer) -> Iterator[World]:
    user, password = dovecot.new_user("e2e")
    seeded = seed_standard_corpus(dovecot, user, count=240)
    env = {
        "MAILROOM_IMAP_CA_FILE": str(dovecot.ca_file),
        "MAILROOM_IMAP_TIMEOUT_SECONDS": "10",
        "MAILROOM_MIGRATION_BATCH_SIZE": "20",
        "MAILROOM_MIGRATION_WINDOW_BATCHES": "3",
        "MAILROOM_MIGRATION_WINDOWS_PER_EXECUTION": "2",
        "MAILROOM_MIGRATION_MAP_CONCURRENCY": "3",
        # One migration on the whole platform, and 20 migration writes per token per minute: the
        # 503 and 429 paths are reachable (this module's own writes stay well under 20 a minute).
        "MAILROOM_MIGRATION_CAPACITY": "1",
        "MAILROOM_MIGRATION_WRITE_LIMIT_PER_MINUTE": "20",
    }
    # Hundreds of stored messages make the final snapshot on exit take a while.
    with start_stack(tmp_path_factory.mktemp("migration-state"), stop_timeout=90, **env) as stack:
        headers = {"Authorization": f"Bearer {stack.admin_token}"}
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as admin:
            domain = f"mig-{uuid.uuid4().hex[:8]}.example.com"
            data(post(admin, "/api/v1/domains", {"domain": domain}), 201)
            yield World(stack, admin, dovecot, user, password, seeded, domain)


def new_mailbox(world: World, local_part: str) -> tuple[dict[str, Any], httpx.Client]:
    body = {"local_part": local_part, "domain": world.domain, "password": PASSWORD, "quota": 512}
    mailbox = data(post(world.admin, "/api/v1/mailboxes", body), 201)
    token = data(
        post(
            world.admin,
            f"/api/v1/mailboxes/{mailbox['id']}/message-tokens",
            {"name": "e2e", "scopes": ["messages:read"]},
        ),
        201,
    )["token"]
    reader = httpx.Client(
        base_url=world.stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    return mailbox, reader


def start(world: World, mailbox_id: str, **overrides: Any) -> httpx.Response:
    body = {
        "mailbox_id": mailbox_id,
        "provider": "generic_imap",
        "target_password": PASSWORD,
        **world.source(),
        **overrides,
    }
    return post(world.admin, "/api/v1/migrations", body)


def wait(world: World, job_id: str, until: Any = None) -> dict[str, Any]:
    """Poll as the job says (``poll_hint_seconds``, shortened here) until it ends, or ``until(view)``."""
    deadline = time.monotonic() + DEADLINE
    while True:
        view = data(world.admin.get(f"/api/v1/migrations/{job_id}"))
        if (until(view) if until else view["poll_hint_seconds"] is None) or time.monotonic() > deadline:
            return view  # type: ignore[no-any-return]
        time.sleep(0.2)


def folder_totals(reader: httpx.Client) -> dict[str, int]:
    return {f["path"]: f["total"] for f in data(reader.get("/api/v1/messages/folders")) if f["total"]}


def messages_in(reader: httpx.Client, folder: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = "/api/v1/messages"
    params: dict[str, Any] | None = {"folder": folder, "per_page": 100}
    while url:
        page = reader.get(url, params=params)
        assert page.status_code == 200, page.text
        found += page.json()["data"]
        url, params = page.json()["links"]["next"], None
    return found


def executions(world: World, job_id: str) -> list[Any]:
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=world.stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-migration")]
    listed = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], maxResults=1000)["executions"]
    return [e for e in listed if e["name"].startswith(job_id)]


def settled_executions(world: World, job_id: str) -> list[Any]:
    """The job's executions once none is running: the job reads ``completed`` as soon as its last
    step has written it, a moment before that execution itself ends."""
    deadline = time.monotonic() + DEADLINE
    while True:
        runs = executions(world, job_id)
        if all(r["status"] != "RUNNING" for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def expected_per_folder(world: World) -> dict[str, int]:
    return {TARGET_FOLDER.get(name, name): len(messages) for name, messages in world.seeded.items()}


def test_test_connection_lists_the_source_folders_or_refuses_wrong_credentials(world: World) -> None:
    listed = post(world.admin, "/api/v1/migrations/test-connection", world.source())
    assert listed.status_code == 200, listed.text
    assert listed.json()["success"] is True
    counts = listed.json()["folders"]
    assert {name: counts[name] for name in world.seeded} == {n: len(m) for n, m in world.seeded.items()}
    assert "Entwürfe" in counts and "Café ☕" in counts  # decoded from modified UTF-7

    refused = post(
        world.admin, "/api/v1/migrations/test-connection", world.source(source_password="wrong-one")
    )
    assert code(refused) == (422, "connection_failed")
    assert "wrong-one" not in refused.text


def test_a_mailbox_migrates_completely_then_a_second_run_skips_everything(world: World) -> None:
    mailbox, reader = new_mailbox(world, "full")
    started = start(world, mailbox["id"], skip_duplicates=False)
    job = data(started, 201)
    assert job["status"] == "pending" and job["poll_hint_seconds"] == 5
    assert job["source_email"].startswith(world.user[0] + "***") and world.password not in started.text

    done = wait(world, job["id"])
    assert done["status"] == "completed", done
    assert (done["total_messages"], done["imported_messages"], done["failed_messages"]) == (
        world.total,
        world.total,
        0,
    )
    assert {f["name"]: (f["expected"], f["imported"], f["status"]) for f in done["folders"]} == {
        name: (len(messages), len(messages), "completed") for name, messages in world.seeded.items()
    }
    # Dozens of batches, and more executions than one: each continued as new, then succeeded.
    runs = settled_executions(world, job["id"])
    assert len(runs) >= 3 and all(r["status"] == "SUCCEEDED" for r in runs), [
        (r["name"], r["status"]) for r in runs
    ]

    # The mail, through the Messages API, in the mapped folders with its flags and dates.
    assert folder_totals(reader) == expected_per_folder(world)
    sent = {m["subject"]: m for m in messages_in(reader, "Sent")}
    for message in world.seeded["Sent"]:
        subject = message.raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        if subject in sent:
            copy = sent[subject]
            assert copy["direction"] == "outbound" and copy["flags"]["seen"] is True
            assert copy["received_at"].startswith(message.internal_date.strftime("%Y-%m-%dT%H:%M:%S"))
    inbox = messages_in(reader, "INBOX")
    flagged = sum(1 for m in world.seeded["INBOX"] if "\\Flagged" in m.flags)
    assert sum(1 for m in inbox if m["flags"]["flagged"]) == flagged
    assert any(m["has_attachments"] and m["size"] > 2_000_000 for m in inbox)  # the large attachment

    again = data(start(world, mailbox["id"], skip_duplicates=True), 201)
    second = wait(world, again["id"])
    assert second["status"] == "completed", second
    assert (second["imported_messages"], second["skipped_duplicates"]) == (0, world.total)
    assert folder_totals(reader) == expected_per_folder(world)  # nothing stored twice
    reader.close()


def test_cancelled_mid_way_and_retried_it_ends_with_equal_counts_and_no_duplicates(world: World) -> None:
    mailbox, reader = new_mailbox(world, "resumed")
    # INBOX only (about half the corpus, with the large attachment and the malformed messages).
    job = data(start(world, mailbox["id"], skip_duplicates=False, selected_folders=["INBOX"]), 201)
    inbox = len(world.seeded["INBOX"])

    # One active migration per organization.
    assert code(start(world, mailbox["id"])) == (409, "conflict")

    running = wait(
        world, job["id"], until=lambda v: v["imported_messages"] > 0 or v["poll_hint_seconds"] is None
    )
    assert running["status"] == "processing", running
    cancelled = data(post(world.admin, f"/api/v1/migrations/{job['id']}:cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["poll_hint_seconds"] is None
    assert code(post(world.admin, f"/api/v1/migrations/{job['id']}:cancel")) == (409, "conflict")

    retried = data(post(world.admin, f"/api/v1/migrations/{job['id']}:retry"))
    assert (retried["status"], retried["attempt"]) == ("pending", 2)
    done = wait(world, job["id"])
    assert done["status"] == "completed", done
    assert (done["total_messages"], done["imported_messages"]) == (inbox, inbox)
    assert [(f["name"], f["expected"], f["imported"]) for f in done["folders"]] == [("INBOX", inbox, inbox)]
    assert folder_totals(reader) == {"INBOX": inbox}  # every message once
    assert Counter(m["status"] for m in executions(world, job["id"])).get("RUNNING", 0) == 0

    assert world.admin.delete(f"/api/v1/migrations/{job['id']}").status_code == 204
    assert world.admin.get(f"/api/v1/migrations/{job['id']}").status_code == 404
    reader.close()


def test_wrong_credentials_or_an_unreachable_server_fail_the_job_clearly(world: World) -> None:
    mailbox, reader = new_mailbox(world, "refused")
    job = data(start(world, mailbox["id"], source_password="not-it"), 201)
    failed = wait(world, job["id"])
    assert (failed["status"], failed["error_code"], failed["error_reason"]) == (
        "failed",
        "connection_failed",
        "auth_failed",
    )
    assert failed["error_message"] and "not-it" not in failed["error_message"]

    job = data(start(world, mailbox["id"], source_port=free_port()), 201)
    failed = wait(world, job["id"])
    assert (failed["status"], failed["error_code"]) == ("failed", "connection_failed"), failed
    reader.close()


def test_an_empty_source_completes_at_once(world: World) -> None:
    mailbox, reader = new_mailbox(world, "empty")
    user, password = world.server.new_user("empty")
    job = data(start(world, mailbox["id"], source_email=user, source_password=password), 201)
    done = wait(world, job["id"])
    assert (done["status"], done["progress"], done["total_messages"]) == ("completed", 100, 0), done
    assert [f["name"] for f in done["folders"]] == ["INBOX"] and folder_totals(reader) == {}
    reader.close()


def test_platform_capacity_is_503_and_migration_writes_have_their_own_rate_limit(world: World) -> None:
    other = create_org(world.stack, f"Initech {uuid.uuid4().hex[:6]}")
    headers = {"Authorization": f"Bearer {other['admin_token']}"}
    with httpx.Client(base_url=world.stack.api_url, headers=headers, timeout=60) as b:
        domain = f"mig-{uuid.uuid4().hex[:8]}.example.net"
        data(post(b, "/api/v1/domains", {"domain": domain}), 201)
        body = {"local_part": "incoming", "domain": domain, "password": PASSWORD}
        target = data(post(b, "/api/v1/mailboxes", body), 201)
        b_start = {"mailbox_id": target["id"], "provider": "generic_imap", "target_password": PASSWORD}

        # The platform runs one migration (MAILROOM_MIGRATION_CAPACITY=1): while this organization's
        # runs, the other organization's start is refused as retryable, and nothing is created.
        mailbox, reader = new_mailbox(world, "capacity")
        running = data(start(world, mailbox["id"], skip_duplicates=False), 201)
        refused = post(b, "/api/v1/migrations", {**b_start, **world.source()})
        assert code(refused) == (503, "migration_capacity_reached"), refused.text
        assert refused.json()["error"]["retryable"] is True
        assert data(b.get("/api/v1/migrations")) == []

        # Once it ends, the slot is free again.
        data(post(world.admin, f"/api/v1/migrations/{running['id']}:cancel"))
        admitted = data(post(b, "/api/v1/migrations", {**b_start, **world.source()}), 201)
        data(post(b, f"/api/v1/migrations/{admitted['id']}:cancel"))
        reader.close()

        # 20 migration writes per token per minute, refused or not: a fresh token gets 20, then 429.
        token = data(
            post(b, "/api/v1/tokens", {"name": "limits", "scopes": ["migrations:read", "migrations:write"]}),
            201,
        )["token"]
        with httpx.Client(
            base_url=world.stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as limited:
            answers = [post(limited, "/api/v1/migrations/test-connection", {}) for _ in range(21)]
        assert [a.status_code for a in answers[:20]] == [422] * 20
        assert code(answers[20]) == (429, "rate_limited")
        assert int(answers[20].headers["Retry-After"]) >= 1
        # Reads are not migration writes.
        assert b.get("/api/v1/migrations").status_code == 200

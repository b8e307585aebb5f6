"""Task configs end to end, over HTTP against their own local stack: a task with a webhook action
fires on its recurring schedule (the stack's rate minutes shortened to 2 seconds) and POSTs a
digest of the mailbox's mail, received over SMTP, that a receiver verifies with
``standardwebhooks``; ``action/execute`` runs it now; both runs are listed with their outcome.
The webhook action is made through the automation API (its secret shown once, in that response)."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.api_http import data, post, wait_for
from tests.support.webhooks import Receiver, receiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tasks")]
PASSWORD = "Correct-Horse-42"


@dataclass
class World:
    stack: LocalStackProcess
    admin: httpx.Client
    org_id: str
    mailbox: dict[str, Any]
    hook: Receiver


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    state: Path = tmp_path_factory.mktemp("tasks-state")
    with (
        start_stack(state, MAILROOM_LOCAL_RATE_MINUTE_SECONDS="2") as stack,
        httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
        ) as admin,
        receiver() as hook,
    ):
        domain = data(
            post(admin, "/api/v1/domains", {"domain": f"tasks-{uuid.uuid4().hex[:8]}.example.com"}), 201
        )
        body = {"local_part": "digest", "domain": domain["domain"], "password": PASSWORD}
        mailbox = data(post(admin, "/api/v1/mailboxes", body), 201)
        org_id = data(admin.get("/api/v1/account"))["id"]
        yield World(stack, admin, org_id, mailbox, hook)


def smtp_send(world: World, subject: str) -> None:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Ann Example <ann@sender.example.net>"
    message["To"] = world.mailbox["address"]
    message["Subject"] = subject
    message.set_content("A message for the digest.\n")
    with smtplib.SMTP("127.0.0.1", world.stack.smtp_port, timeout=60) as smtp:
        smtp.ehlo("mx.sender.example.net")
        smtp.sendmail("ann@sender.example.net", [world.mailbox["address"]], message.as_bytes())


def webhook_action(world: World) -> tuple[str, str]:
    """(action id, its secret): a webhook action to the receiver, made through the automation API."""
    body = {"name": "digest", "action_type": "webhook", "parameters": {"url": world.hook.url}}
    action = data(post(world.admin, "/api/v1/actions/", body), 201)
    return str(action["id"]), str(action["secret"])


def runs(world: World, task_id: str) -> list[dict[str, Any]]:
    return list(data(world.admin.get(f"/api/v1/task-configs/{task_id}/runs")))


def run_of(world: World, task_id: str, run_id: str) -> dict[str, Any]:
    return dict(data(world.admin.get(f"/api/v1/task-configs/{task_id}/runs/{run_id}")))


def finished(world: World, task_id: str, run_id: str) -> dict[str, Any] | None:
    run = run_of(world, task_id, run_id)
    return run if run["status"] not in ("queued", "running") else None


def test_a_task_fires_on_its_schedule_and_through_action_execute(world: World) -> None:
    subjects = {f"Digest {n} {uuid.uuid4().hex[:6]}" for n in range(2)}
    for subject in subjects:
        smtp_send(world, subject)
    action_id, secret = webhook_action(world)
    world.hook.secret = secret
    body = {
        "name": "Unread digest",
        "mailbox_id": world.mailbox["id"],
        "schedule": "rate(1 minute)",  # 2 seconds in this stack
        "timezone": "Europe/Paris",
        "action_id": action_id,
        "query": {"unread": True, "folder": "INBOX"},
    }
    task = data(post(world.admin, "/api/v1/task-configs", body), 201)

    def digests() -> list[Any]:
        return [r for r in world.hook.received if r.json().get("task", {}).get("id") == task["id"]]

    def complete_digest() -> Any:
        found = [d for d in digests() if {m["subject"] for m in d.json()["messages"]} == subjects]
        return found[0] if found else None

    # (A firing before the mail was stored matched nothing and POSTed nothing.)
    first = wait_for("a scheduled digest of both messages", complete_digest, world.stack)
    assert first.verified is True, first.headers
    scheduled = wait_for("the scheduled run", lambda: finished(world, task["id"], first.json()["run_id"]))
    assert scheduled["status"] == "succeeded" and scheduled["trigger"] == "schedule", scheduled
    assert scheduled["counts"] == {"matched": 2, "done": 2, "failed": 0} and scheduled["scheduled_time"]

    # Disabled, it fires no more (once a firing under way has finished); action/execute still runs it.
    assert (
        data(world.admin.patch(f"/api/v1/task-configs/{task['id']}", json={"enabled": False}))["enabled"]
        is False
    )
    wait_for(
        "no run under way",
        lambda: all(r["status"] not in ("queued", "running") for r in runs(world, task["id"])) or None,
    )
    fired = len(runs(world, task["id"]))
    manual = data(post(world.admin, f"/api/v1/task-configs/{task['id']}/action/execute"), 202)
    assert manual["status"] == "queued" and manual["trigger"] == "manual"
    done = wait_for("the manual run", lambda: finished(world, task["id"], manual["id"]), world.stack)
    assert done["status"] == "succeeded" and done["counts"]["matched"] == 2, done
    (received,) = [d for d in digests() if d.json()["run_id"] == manual["id"]]
    assert received.verified is True
    assert data(world.admin.get(f"/api/v1/task-configs/{task['id']}"))["last_run"]["id"] == manual["id"]
    assert [r["trigger"] for r in runs(world, task["id"])][: len(runs(world, task["id"])) - fired] == [
        "manual"
    ]

    assert world.admin.delete(f"/api/v1/task-configs/{task['id']}").status_code == 204
    assert world.admin.get(f"/api/v1/task-configs/{task['id']}").status_code == 404

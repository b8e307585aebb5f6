"""/api/v0 end to end against the local stack: the API key its first start wrote, an inbox on the
platform domain, and mail to it over SMTP (the stack's stand-in for SES receiving) arriving there,
read back with a message token the same key made through /api/v1."""

from __future__ import annotations

import smtplib
import stat
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]
ARRIVAL_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def agent(stack: LocalStackProcess) -> Iterator[httpx.Client]:
    """A client of the v0 reference: only a base URL and the API key."""
    key_file = stack.state_dir / "api-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert key.startswith("inai_")
    with httpx.Client(
        base_url=f"{stack.api_url}/api/v0", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


def send(stack: LocalStackProcess, address: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "Ann Example <ann@sender.example.net>"
    message["To"] = address
    message["Subject"] = subject
    message.set_content("Welcome aboard.\n")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        assert smtp.send_message(message) == {}


def arrives(stack: LocalStackProcess, key: str, inbox: dict[str, Any], subject: str) -> dict[str, Any]:
    """The message, read with a message token the API key makes through /api/v1 (the key is an
    organization-wide ops token there)."""
    token = httpx.post(
        f"{stack.api_url}/api/v1/mailboxes/{inbox['inbox_id']}/message-tokens",
        json={"name": "e2e v0", "scopes": ["messages:read"]},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert token.status_code == 201, token.text
    reader = {"Authorization": f"Bearer {token.json()['data']['token']}"}
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while True:
        response = httpx.get(f"{stack.api_url}/api/v1/messages", headers=reader, timeout=30)
        assert response.status_code == 200, response.text
        found = [m for m in response.json()["data"] if m["subject"] == subject]
        if found:
            return found[0]  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            pytest.fail(f"the message did not arrive:\n{stack.logs()}")
        time.sleep(0.2)


def new_inbox(agent: httpx.Client) -> dict[str, Any]:
    username = f"agent-{uuid.uuid4().hex[:8]}"
    created = agent.post("/inboxes", json={"username": username, "display_name": "Agent One"})
    assert created.status_code == 200, created.text
    inbox: dict[str, Any] = created.json()
    assert inbox["email_address"] == f"{username}@mailroom.localhost"
    return inbox


def test_an_inbox_on_the_platform_domain_receives_mail_over_smtp(
    stack: LocalStackProcess, agent: httpx.Client
) -> None:
    inbox = new_inbox(agent)
    assert agent.get(f"/inboxes/{inbox['inbox_id']}").json() == inbox
    send(stack, inbox["email_address"], f"Hello {inbox['username']}")
    key = str(agent.headers["Authorization"]).removeprefix("Bearer ")
    message = arrives(stack, key, inbox, f"Hello {inbox['username']}")
    assert inbox["email_address"] in str(message["to"])

    deleted = agent.delete(f"/inboxes/{inbox['inbox_id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert agent.get(f"/inboxes/{inbox['inbox_id']}").json()["name"] == "NotFoundError"
    # The address is nobody's now; SES still accepts mail for the domain (and drops it).
    send(stack, inbox["email_address"], "Too late")


def test_the_key_and_the_platform_domain_survive_a_restart(
    stack: LocalStackProcess, agent: httpx.Client
) -> None:
    key = (stack.state_dir / "api-key").read_text().strip()
    inbox = new_inbox(agent)
    values = dict(line.split("=", 1) for line in (stack.state_dir / "local.env").read_text().splitlines())
    assert values["MAILROOM_PLATFORM_DOMAIN"] == "mailroom.localhost"

    stack.restart()

    assert (stack.state_dir / "api-key").read_text().strip() == key  # not issued again
    with httpx.Client(
        base_url=f"{stack.api_url}/api/v0", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        assert client.get(f"/inboxes/{inbox['inbox_id']}").json() == inbox
    # The emulated SES forgets identities across restarts; the start registers the domain again.
    send(stack, inbox["email_address"], "After the restart")
    arrives(stack, key, inbox, "After the restart")

"""The v0 mail tests' world (an organization with two inboxes, mail infrastructure in moto) and
helpers: v0 requests through AgentMessagesFunction, v0 errors, inbound mail, what SES was given."""

from __future__ import annotations

import email
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from mailroom import clock
from mailroom.mail.compose import address_only
from mailroom.mail.parse import parse
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import mailboxes
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.sending import sent_messages

CONFIGURATION_SET = "mailroom-test-SendingConfigurationSet"
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Inbox:
    org: NewOrganization
    table: Table
    mailbox: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.mailbox["id"])

    @property
    def address(self) -> str:
        return str(self.mailbox["address"])

    @property
    def org_id(self) -> str:
        return str(self.org.organization["id"])

    def item(self) -> dict[str, Any]:
        found = mailboxes.get(self.table, self.org_id, self.id)
        assert found is not None
        return found

    def receive(self, raw: bytes, *, at: datetime | None = None, labels: list[str] | None = None) -> Any:
        """Deliver inbound mail the way the inbound function does (services.mail_delivery)."""
        outcome = deliver(
            self.table,
            Incoming(
                org_id=self.org_id,
                mailbox=self.item(),
                raw=raw,
                parsed=parse(raw),
                folder_key="inbox",
                direction="inbound",
                received_at=at or clock.utcnow(),
                labels=labels or [],
                event_type="message.received",
            ),
        )
        return outcome.message


@dataclass
class World:
    org: NewOrganization
    table: Table
    bucket: str
    alice: Inbox
    bob: Inbox

    @property
    def token(self) -> str:
        return self.org.admin_token


def make_world(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The ``world`` fixture of the v0 mail tests: a bucket, SES's configuration set, a domain and
    two inboxes (``agent-1@example.com`` named "Agent One", ``bob@example.com``)."""
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", CONFIGURATION_SET)
    monkeypatch.delenv("MAILROOM_WEBHOOK_ALLOW_PRIVATE", raising=False)
    get_settings.cache_clear()
    add_domain(org, "example.com")
    alice = new_mailbox(org, "agent-1", name="Agent One")
    bob = new_mailbox(org, "bob", name="Bob")
    yield World(org, table, bucket, Inbox(org, table, alice), Inbox(org, table, bob))
    get_settings.cache_clear()


def v0(token: str, method: str, path: str, body: Any = None, **query: Any) -> Result:
    return call("agent_messages", method, f"/api/v0{path}", token=token, json_body=body, query=query or None)


def ok0(result: Result, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body[:2000])
    return result.json() if result.body else None


def v0_error(result: Result, status: int, name: str) -> dict[str, Any]:
    assert result.status == status, (result.status, result.body[:2000])
    payload: dict[str, Any] = result.json()
    assert payload["name"] == name and isinstance(payload["message"], str) and payload["message"]
    assert set(payload) <= {"name", "message", "errors"}
    return payload


def send(world: World, inbox: Inbox, body: dict[str, Any]) -> dict[str, Any]:
    sent: dict[str, Any] = ok0(v0(world.token, "POST", f"/inboxes/{inbox.id}/messages/send", body))
    assert set(sent) == {"message_id", "thread_id"}
    return sent


def last_sent_mime() -> tuple[Any, EmailMessage]:
    raw = sent_messages()[-1]
    return raw, email.message_from_bytes(raw.raw_data.encode(), policy=policy.default)  # type: ignore[return-value]


def inbound(
    subject: str,
    *,
    message_id: str,
    sender: str = "Carol <carol@example.net>",
    to: str = "Agent One <agent-1@example.com>, dave@example.org",
    cc: str | None = "erin@example.org",
    text: str = "Hi there!",
    extra: list[str] | None = None,
    attachment: tuple[str, str, bytes] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    if cc:
        message["Cc"] = cc
    message["Message-ID"] = message_id
    message["Date"] = "Sun, 01 Mar 2026 12:00:00 +0000"
    for line in extra or []:
        name, _, value = line.partition(": ")
        message[name] = value
    message.set_content(text)
    if attachment:
        filename, content_type, payload = attachment
        maintype, subtype = content_type.split("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def ses_recipients(ses: Any) -> set[str]:
    destinations = ses.destinations
    if isinstance(destinations, dict):
        destinations = [a for values in destinations.values() for a in values]
    return {address_only(str(a)) for a in destinations}

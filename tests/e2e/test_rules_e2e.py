"""Mailbox rules end to end: rules set over HTTP, mail sent over SMTP to the local stack's SES
receiving, the inbound function's rules stage, and what leaves through the outbox (forwards,
auto-replies; never a bounce).

A rule files a message into a folder and labels it; a forward rule forwards once; a list message
gets no auto-reply and two messages from one sender within the interval get one; a reject rule
leaves nothing in the mailbox and no bounce in the outbox; a Sieve script with a syntax error is
refused and the rules in force keep working."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.stack_process import LocalStackProcess, start_stack
from tests.support.api_http import data, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("rules")]
PASSWORD = "Correct-Horse-42"


@dataclass
class Box:
    stack: LocalStackProcess
    admin: httpx.Client
    agent: httpx.Client  # the mailbox's message token
    mailbox: dict[str, Any]

    @property
    def address(self) -> str:
        return str(self.mailbox["address"])

    def path(self, tail: str) -> str:
        return f"/api/v1/mailboxes/{self.mailbox['id']}{tail}"


def write(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return client.request(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with start_stack(tmp_path_factory.mktemp("rules-state")) as stack:
        auth = {"Authorization": f"Bearer {stack.admin_token}"}
        with httpx.Client(base_url=stack.api_url, headers=auth, timeout=30) as admin:
            domain = data(
                write(
                    admin, "POST", "/api/v1/domains", {"domain": f"rules-{uuid.uuid4().hex[:8]}.example.com"}
                ),
                201,
            )
            body = {"local_part": "ann", "domain": domain["domain"], "password": PASSWORD}
            mailbox = data(write(admin, "POST", "/api/v1/mailboxes", body), 201)
            scopes = {"name": "e2e rules", "scopes": ["messages:read", "messages:write"]}
            token = data(
                write(admin, "POST", f"/api/v1/mailboxes/{mailbox['id']}/message-tokens", scopes), 201
            )["token"]
            agent_auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=stack.api_url, headers=agent_auth, timeout=30) as agent:
                yield Box(stack, admin, agent, mailbox)


def smtp(box: Box, *, sender: str, subject: str, headers: str = "", body: str = "Hello.") -> None:
    raw = (
        f"From: {sender}\r\nTo: {box.address}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@sender.example.net>\r\n{headers}\r\n{body}\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", box.stack.smtp_port, timeout=30) as client:
        client.ehlo("mx.sender.example.net")
        client.mail(sender)
        code, reply = client.rcpt(box.address)
        assert code == 250, reply
        code, reply = client.data(raw)
        assert code == 250, reply


def logged(box: Box, subject: str) -> dict[str, Any] | None:
    entries = data(box.agent.get(box.path("/logs"), params={"per_page": 100}))
    return next((e for e in entries if e["subject"] == subject), None)


def outbox(box: Box, *needles: str) -> list[bytes]:
    """Outbox files (mail the stack sent outside its own domains) containing every needle."""
    folder = box.stack.state_dir / "outbox"
    files = sorted(folder.glob("*.eml")) if folder.exists() else []
    found = [path.read_bytes() for path in files]
    return [raw for raw in found if all(n.encode() in raw for n in needles)]


def listed(box: Box, **params: Any) -> list[dict[str, Any]]:
    return data(box.agent.get("/api/v1/messages", params=params))  # type: ignore[no-any-return]


def rule(box: Box, body: dict[str, Any]) -> dict[str, Any]:
    return data(write(box.agent, "POST", box.path("/rules"), body), 201)  # type: ignore[no-any-return]


def test_rules_file_forward_reject_and_survive_a_broken_sieve_script(box: Box) -> None:
    tag = uuid.uuid4().hex[:8]
    data(write(box.agent, "POST", "/api/v1/messages/folders", {"path": "Receipts"}), 201)
    rule(
        box,
        {
            "name": "receipts",
            "conditions": [{"field": "subject", "op": "starts_with", "value": f"receipt {tag}"}],
            "actions": [{"type": "move", "folder": "Receipts"}, {"type": "add_label", "label": "paid"}],
        },
    )
    rule(
        box,
        {
            "name": "forward",
            "conditions": [{"field": "subject", "op": "contains", "value": f"fwd {tag}"}],
            "actions": [{"type": "forward", "to": f"boss-{tag}@elsewhere.example.org"}],
        },
    )
    rule(
        box,
        {
            "name": "reject",
            "conditions": [{"field": "from", "op": "is", "value": f"pest-{tag}@sender.example.net"}],
            "actions": [{"type": "reject"}],
        },
    )

    smtp(box, sender=f"shop-{tag}@sender.example.net", subject=f"receipt {tag} #1")
    smtp(box, sender=f"colleague-{tag}@sender.example.net", subject=f"fwd {tag}")
    smtp(box, sender=f"pest-{tag}@sender.example.net", subject=f"buy {tag}")

    filed = wait_for("the receipt in Receipts", lambda: next(iter(listed(box, folder="Receipts")), None))
    assert filed["subject"] == f"receipt {tag} #1" and filed["labels"] == ["paid"]

    forwarded = wait_for("the forward", lambda: outbox(box, f"X-Mailroom-Outbox-To: boss-{tag}@") or None)
    assert f"Subject: fwd {tag}".encode() in forwarded[0]
    rejected = wait_for("the reject's log entry", lambda: logged(box, f"buy {tag}"))
    assert rejected["outcome"] == "rejected" and rejected["message_id"] is None
    wait_for("the forward's log entry", lambda: logged(box, f"fwd {tag}"))
    assert len(outbox(box, f"X-Mailroom-Outbox-To: boss-{tag}@")) == 1  # once
    assert not outbox(box, f"pest-{tag}@")  # no bounce, no answer: nothing to the rejected sender
    assert not [m for m in listed(box) if m["subject"] == f"buy {tag}"]

    broken = write(
        box.agent,
        "PUT",
        box.path("/sieve"),
        {"script": 'require ["fileinto"];\nif true {\n fileinto "X"\n}\n'},
    )
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "sieve_syntax"
    smtp(box, sender=f"shop-{tag}@sender.example.net", subject=f"receipt {tag} #2")
    wait_for("the second receipt in Receipts", lambda: len(listed(box, folder="Receipts")) == 2 or None)


def test_one_auto_reply_per_sender_and_none_to_a_list(box: Box) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = {"enabled": True, "subject": f"Away {tag}", "text": "I am away until Monday."}
    data(write(box.admin, "PUT", box.path("/auto-reply"), settings))
    carol, news = f"carol-{tag}@sender.example.net", f"news-{tag}@lists.example.net"

    smtp(box, sender=carol, subject=f"first {tag}")
    smtp(box, sender=carol, subject=f"second {tag}")
    smtp(box, sender=news, subject=f"digest {tag}", headers=f"List-Id: <news-{tag}.lists.example.net>\r\n")

    for subject in (f"first {tag}", f"second {tag}", f"digest {tag}"):
        wait_for(
            f"the log entry of {subject}",
            lambda s=subject: e if (e := logged(box, s)) and e["auto_reply"] != "pending" else None,
        )  # type: ignore[misc]
    replies = outbox(box, f"X-Mailroom-Outbox-To: {carol}", f"Subject: Away {tag}")
    assert len(replies) == 1 and b"Auto-Submitted: auto-replied" in replies[0]
    assert not outbox(box, f"X-Mailroom-Outbox-To: {news}")
    assert logged(box, f"digest {tag}")["auto_reply"] == "list"  # type: ignore[index]
    outcomes = sorted(logged(box, f"{word} {tag}")["auto_reply"] for word in ("first", "second"))  # type: ignore[index]
    assert outcomes == ["already_replied", "sent"]
    data(write(box.admin, "PUT", box.path("/auto-reply"), {"enabled": False}))


def test_the_sieve_view_reads_back_to_the_same_rules(box: Box) -> None:
    rule(
        box,
        {
            "name": "sieve view",
            "match": "any",
            "actions": [{"type": "flag"}],
            "stop": True,
            "conditions": [
                {"field": "header", "header": "X-Priority", "op": "is", "value": "1"},
                {"field": "body", "op": "regex", "value": "urgent|asap"},
            ],
        },
    )
    before = data(box.agent.get(box.path("/rules")))
    script = data(box.agent.get(box.path("/sieve")))["script"]
    assert "# rule:[sieve view]" in script and 'body :text :regex "urgent|asap"' in script
    data(write(box.agent, "PUT", box.path("/sieve"), {"script": script}))
    after = data(box.agent.get(box.path("/rules")))
    assert [{**r, "id": None} for r in after] == [{**r, "id": None} for r in before]

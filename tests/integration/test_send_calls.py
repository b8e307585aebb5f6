"""The AWS calls a send makes, counted through SendFunction's real handler under moto (as deployed: the
token lookup cached, request counts flushed once a minute), and the correctness of what was folded
to make them few: the sender domain, its relay claim and the suppressions read together, the outbound
counter and the replied-to message's ``answered`` flag in the Sent copy's transaction, an API
mutation's idempotency completion in its audit record's transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from mailroom.mail.parse import parse
from mailroom.services.mail_delivery import Incoming, deliver
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, domain_metrics, keys, mailboxes, suppressions
from mailroom.store import mail as store
from mailroom.store.idempotency import Claim, IdempotencyStore
from mailroom.store.table import Table, values
from tests.support.mailboxes import add_domain, create_mail_infrastructure, get, new_mailbox, ok
from tests.support.sending import message_token, send, sent_messages


@contextmanager
def counted() -> Iterator[Counter[str]]:
    """Every AWS API call made inside, by ``service.Operation`` (botocore's ``before-call``). Request
    counts pending in this process are flushed first: the next flush is then a minute away."""
    from mailroom.services import request_meter
    from mailroom.store.table import Table

    request_meter.flush(Table())
    counts: Counter[str] = Counter()

    def count(event_name: str, **_kwargs: Any) -> None:
        _before, service, operation = event_name.split(".", 2)
        counts[f"{service}.{operation}"] += 1

    clients = list(aws._clients.values())
    for client in clients:
        client.meta.events.register("before-call", count)
    try:
        yield counts
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", count)


@pytest.fixture
def sender(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", "mailroom-test-SendingConfigurationSet")
    monkeypatch.setenv("MAILROOM_AUTH_CACHE_TTL", "3600")  # as deployed
    monkeypatch.setenv("MAILROOM_USAGE_FLUSH_SECONDS", "60")  # as the template sets it
    get_settings.cache_clear()
    domain = add_domain(org, "example.com")
    alice = new_mailbox(org, "alice", name="Alice Example")
    token = message_token(org, alice["id"])
    ok(send(token, {"to": "warm@example.net", "text": "clients and the token lookup"}), 201)
    yield {"org_id": org.organization["id"], "mailbox": alice, "token": token, "domain": domain}
    get_settings.cache_clear()


def inbound(table: Table, org_id: str, mailbox_id: str, message_id: str) -> dict[str, Any]:
    raw = (
        f"From: carol@example.net\r\nTo: alice@example.com\r\nSubject: Plans\r\nMessage-ID: {message_id}\r\n"
        "\r\nShall we?\r\n"
    ).encode()
    box = mailboxes.get(table, org_id, mailbox_id)
    assert box is not None
    return deliver(
        table,
        Incoming(
            org_id=org_id,
            mailbox=box,
            raw=raw,
            parsed=parse(raw),
            folder_key="inbox",
            direction="inbound",
            received_at=datetime.now(UTC),
            source_id=message_id,
        ),
    ).message


def test_a_plain_send_makes_six_aws_calls(sender: dict[str, Any]) -> None:
    with counted() as calls:
        ok(send(sender["token"], {"to": "bob@example.net", "subject": "Hi", "text": "hi"}), 201)
    assert calls == Counter(
        {
            # The token's rate-limit window with the idempotency claim (api/admission.py); the Sent
            # copy (+ counters); the audit record with the idempotency completion.
            "dynamodb.TransactWriteItems": 3,
            # The token's mailbox, sender domain, its relay claim, the suppressions and the window.
            "dynamodb.BatchGetItem": 1,
            "sesv2.SendEmail": 1,
            "s3.PutObject": 1,  # the Sent copy's bytes
        }
    )


def test_a_reply_reads_its_parent_once_and_flags_it_in_the_same_transaction(
    sender: dict[str, Any], table: Table
) -> None:
    org_id, mailbox_id = sender["org_id"], sender["mailbox"]["id"]
    original = inbound(table, org_id, mailbox_id, "<plans@example.net>")
    draft = ok(get("send", sender["token"], f"/api/v1/messages/{original['id']}/reply"), 200)
    with counted() as calls:
        reply = ok(send(sender["token"], {**draft, "text": "Yes."}), 201)
    assert calls["dynamodb.Query"] == 1 and calls["dynamodb.GetItem"] == 1  # the parent; its thread
    assert sum(calls.values()) == 8  # the plain send's 6, the parent and the thread
    assert reply["thread_id"] == original["thread_id"]
    parent = store.get_message(table, org_id, mailbox_id, original["id"])
    assert parent is not None and parent["flags"]["answered"] is True


def test_a_reply_whose_parent_is_deleted_meanwhile_is_still_stored(
    sender: dict[str, Any], table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flag's condition fails (the parent is gone): the Sent copy is stored without it."""
    from mailroom.services import sending

    org_id, mailbox_id = sender["org_id"], sender["mailbox"]["id"]
    original = inbound(table, org_id, mailbox_id, "<gone@example.net>")
    draft = ok(get("send", sender["token"], f"/api/v1/messages/{original['id']}/reply"), 200)
    read = sending._replied_to

    def read_then_deleted(table: Table, org_id: str, mailbox_id: str, key: str) -> dict[str, Any] | None:
        parent = read(table, org_id, mailbox_id, key)
        assert parent is not None
        table.delete(*store.message_key(org_id, mailbox_id, parent["id"]))
        return parent

    monkeypatch.setattr(sending, "_replied_to", read_then_deleted)
    before = len(sent_messages())
    reply = ok(send(sender["token"], {**draft, "text": "Yes."}), 201)
    assert len(sent_messages()) == before + 1
    stored = store.get_message(table, org_id, mailbox_id, reply["message_id"])
    assert stored is not None and stored["folder_key"] == "sent"
    assert store.get_message(table, org_id, mailbox_id, original["id"]) is None


def test_the_outbound_counter_moves_with_the_sent_copy(sender: dict[str, Any], table: Table) -> None:
    org_id, domain_id = sender["org_id"], sender["domain"]["id"]
    today = datetime.now(UTC).date().isoformat()

    def outbound() -> int:
        days = domain_metrics.days(table, org_id, domain_id, first_day=today, last_day=today)
        return int(days[0]["outbound_total"]) if days else 0

    before = outbound()
    ok(send(sender["token"], {"to": "a@example.net", "cc": "b@example.net", "text": "two"}), 201)
    assert outbound() == before + 2


def test_suppressed_recipients_are_still_refused_from_the_combined_read(
    sender: dict[str, Any], table: Table
) -> None:
    suppressions.add(table, sender["org_id"], {"address": "gone@example.net", "reason": "hard_bounce"})
    before = len(sent_messages())
    refused = send(sender["token"], {"to": "ok@example.net", "bcc": "Gone@Example.net", "text": "x"})
    assert refused.status == 422, refused.body
    assert refused.json()["error"]["code"] == "recipient_suppressed"
    assert len(sent_messages()) == before


def test_the_idempotency_completion_op_writes_what_powertools_writes(
    org: NewOrganization, table: Table
) -> None:
    """The completion written in the audit transaction replays exactly like Powertools' own."""
    org_id = org.organization["id"]
    idempotency = IdempotencyStore(table, org_id)
    response = {"status": 201, "headers": {"content-type": "application/json"}, "body": "e30="}
    written = {}
    for name, complete in (
        ("powertools", lambda request: idempotency.complete(request, response)),
        ("transaction", lambda request: table.transact([idempotency.completion_op(request, response)])),
    ):
        request = {"token": "tok_1", "key": name, "method": "POST", "path": "/x", "body_sha256": "ab"}
        assert idempotency.claim(request, remaining_ms=60_000).claim is Claim.NEW
        complete(request)
        replay = idempotency.claim(request, remaining_ms=60_000)
        assert replay.claim is Claim.REPLAY and replay.stored == response
        mismatch = {**request, "body_sha256": "cd"}
        assert idempotency.claim(mismatch, remaining_ms=60_000).claim is Claim.MISMATCH
        page = table.query_page(partition=keys.idempotency_pk(org_id), per_page=10, cursor=None)
        written[name] = {k for item in page.items for k in item}
    assert written["powertools"] == written["transaction"]


def test_when_the_audit_transaction_fails_the_completion_is_written_alone(
    sender: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idempotency completion rides on the audit record's transaction; if that cannot be
    written, the completion still is: the client's retry replays instead of sending again."""
    from mailroom.store import audit
    from mailroom.store.errors import ServiceUnavailable
    from tests.support.lambda_api import call

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise ServiceUnavailable("down")

    monkeypatch.setattr(audit, "record", down)
    body = {"to": "bob@example.net", "text": "once"}
    headers = {"Idempotency-Key": "audit-down"}
    before = len(sent_messages())
    first, again = (
        call("send", "POST", "/api/v1/messages/send", token=sender["token"], json_body=body, headers=headers)
        for _ in range(2)
    )
    assert first.status == again.status == 201, (first.body, again.body)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and len(sent_messages()) == before + 1


# --- the mailbox read with the send checks (services/send_ahead.py) ------------------------------


def _retokened(table: Table, token: str, **hints: str | None) -> None:
    """Rewrite the token's stored mailbox hints (None: as a token issued before they existed)."""
    from mailroom import auth
    from mailroom.domain.tokens import hash_token
    from mailroom.store import tokens

    item = tokens.find_by_hash(table, hash_token(token))
    assert item is not None and item["mailbox_domain_id"] and item["mailbox_address"]
    for name, value in hints.items():
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    table.put(item)
    auth.forget_all()


def _deactivate(table: Table, org_id: str, domain_id: str) -> None:
    table.update(
        keys.org_pk(org_id), keys.domain_sk(domain_id), "SET active = :no", expression_values=values(no=False)
    )


def test_the_token_carries_its_mailboxs_domain_and_address(sender: dict[str, Any], table: Table) -> None:
    from mailroom.domain.tokens import hash_token
    from mailroom.store import tokens

    item = tokens.find_by_hash(table, hash_token(sender["token"]))
    assert item is not None
    assert item["mailbox_domain_id"] == sender["domain"]["id"]
    assert item["mailbox_address"] == sender["mailbox"]["address"]


@pytest.mark.parametrize("elsewhere", ["another domain of the organization", "another organization's domain"])
def test_a_stale_hint_never_checks_another_domain(
    sender: dict[str, Any], table: Table, org: NewOrganization, elsewhere: str
) -> None:
    """The token names an active domain (and its address) that is not its mailbox's: the send is
    checked against the mailbox's own domain, read with the mailbox, and refused when it is inactive."""
    from mailroom.services.organizations import create_organization

    if elsewhere == "another domain of the organization":
        other = add_domain(org, "other.example.org")
    else:
        stranger = create_organization(table, name="Stranger")
        other = add_domain(stranger, "stranger.example.org")
    _retokened(
        table, sender["token"], mailbox_domain_id=other["id"], mailbox_address=f"alice@{other['domain']}"
    )
    _deactivate(table, sender["org_id"], sender["domain"]["id"])
    before = len(sent_messages())
    refused = send(sender["token"], {"to": "bob@example.net", "text": "from where?"})
    assert (refused.status, refused.error_code) == (403, "domain_inactive"), refused.body
    assert len(sent_messages()) == before


def test_a_stale_hint_sends_from_the_mailboxs_own_domain(
    sender: dict[str, Any], table: Table, org: NewOrganization
) -> None:
    """The token names an inactive domain of the organization: the mailbox's own (active) domain
    decides, the mail leaves from the mailbox's address and the own domain's counter moves."""
    other = add_domain(org, "other.example.org")
    _deactivate(table, sender["org_id"], other["id"])
    _retokened(
        table, sender["token"], mailbox_domain_id=other["id"], mailbox_address="alice@other.example.org"
    )
    before = len(sent_messages())
    sent = ok(send(sender["token"], {"to": "bob@example.net", "text": "from home"}), 201)
    assert len(sent_messages()) == before + 1
    assert sent_messages()[-1].source == "alice@example.com"
    stored = store.get_message(table, sender["org_id"], sender["mailbox"]["id"], sent["message_id"])
    assert stored is not None and stored["sender_domain_id"] == sender["domain"]["id"]


def test_a_token_without_hints_still_sends_with_one_more_read(sender: dict[str, Any], table: Table) -> None:
    _retokened(table, sender["token"], mailbox_domain_id=None, mailbox_address=None)
    ok(send(sender["token"], {"to": "warm@example.net", "text": "the lookup again"}), 201)
    with counted() as calls:
        ok(send(sender["token"], {"to": "bob@example.net", "text": "hi"}), 201)
    assert calls["dynamodb.BatchGetItem"] == 2 and "dynamodb.GetItem" not in calls


def test_a_token_whose_mailbox_is_gone_is_refused(sender: dict[str, Any], table: Table) -> None:
    table.delete(keys.org_pk(sender["org_id"]), keys.mailbox_sk(sender["mailbox"]["id"]))
    before = len(sent_messages())
    refused = send(sender["token"], {"to": "bob@example.net", "text": "hi"})
    assert (refused.status, refused.error_code) == (401, "unauthenticated"), refused.body
    assert len(sent_messages()) == before

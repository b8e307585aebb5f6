"""Every message of the corpus — CPython's own email test messages and generated hostile ones (101
levels of nesting, 10^5 tiny parts, a 1 MB header, broken encodings, an encoded newline in Subject)
— through the inbound function: each is stored or quarantined with its reason, none is lost, none
crashes the function, and a second delivery of each event stores nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import aws, keys, mailboxes
from mailroom.store import mail as store
from mailroom.store.table import Item, Table
from tests.support import inbound as sim
from tests.support.mail_corpus import hostile_messages, stdlib_messages
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox


@pytest.fixture
def world(moto_env: None, org: NewOrganization, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    get_settings.cache_clear()
    add_domain(org, "example.com")
    yield {"bucket": bucket, "mailbox": new_mailbox(org, "inbox"), "org_id": org.organization["id"]}
    get_settings.cache_clear()


def everything(table: Table, org_id: str, mailbox_id: str) -> tuple[list[Item], list[Item]]:
    messages = store.list_messages(table, org_id, mailbox_id, per_page=100, cursor=None).items
    quarantined = table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox_id), sk_prefix="QUAR#", per_page=100
    ).items
    return messages, quarantined


def test_every_corpus_message_is_stored_or_quarantined_once(world: dict[str, Any], table: Table) -> None:
    bucket, mailbox, org_id = world["bucket"], world["mailbox"], world["org_id"]
    corpus = [(name, raw, None) for name, raw in stdlib_messages()] + hostile_messages()
    assert len(corpus) > 50
    outcomes: dict[str, str] = {}
    events = []
    for name, raw, expected in corpus:
        ses_id, _ = sim.store_inbound(bucket, raw, recipients=["inbox@example.com"])
        event = sim.ses_event(ses_id, ["inbox@example.com"])
        events.append(event)
        (report,) = sim.invoke(event)["messages"]
        assert report["stored"] + report["quarantined"] == 1, (name, report)
        outcomes[ses_id] = report["problem"] or "stored"
        assert report["problem"] == expected, (name, report["problem"], expected)
    for event in events:  # every event again: nothing more is stored
        assert sim.invoke(event)["messages"][0]["already_done"] == 1

    messages, quarantined = everything(table, org_id, mailbox["id"])
    assert len(messages) + len(quarantined) == len(corpus)
    assert sorted(m["ses_message_id"] for m in messages) == sorted(
        k for k, v in outcomes.items() if v == "stored"
    )
    assert sorted(q["source_id"] for q in quarantined) == sorted(
        k for k, v in outcomes.items() if v != "stored"
    )
    s3 = aws.client("s3")
    for record in quarantined:  # the raw bytes are kept, whole
        inbound = s3.get_object(Bucket=bucket, Key=f"inbound/{record['source_id']}")["Body"].read()
        assert s3.get_object(Bucket=bucket, Key=record["raw_key"])["Body"].read() == inbound
    for message in messages:
        assert "\n" not in message["subject"] and "\r" not in message["subject"]
    injected = next(m for m in messages if "Bcc:" in m["subject"])
    assert injected["subject"] == "line Bcc: evil@example.org"
    state = mailboxes.get(table, org_id, mailbox["id"])
    assert state is not None
    assert state["fc_inbox_total"] == state["fc_inbox_unread"] == len(messages)
    assert state["used_bytes"] == sum(int(m["size"]) for m in messages)

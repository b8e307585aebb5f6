"""A hypothesis fuzz of the inbound path through the inbound function (SES's receipt event, the
message in S3, moto): mutated real-world messages and shapeless bytes are each stored or
quarantined, exactly once, and the function never fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given

from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import keys
from mailroom.store import mail as store
from mailroom.store.table import Table
from tests.support import inbound as sim
from tests.support.fuzzing import corpus, fuzz, received_mail
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox

SEEDS = corpus()


@pytest.fixture
def world(moto_env: None, org: NewOrganization, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    get_settings.cache_clear()
    add_domain(org, "example.com")
    yield {"bucket": bucket, "mailbox": new_mailbox(org, "inbox"), "org_id": org.organization["id"]}
    get_settings.cache_clear()


def test_fuzzed_mail_is_stored_or_quarantined_once(world: dict[str, Any], table: Table) -> None:
    bucket, mailbox, org_id = world["bucket"], world["mailbox"], world["org_id"]
    outcomes: dict[str, str] = {}

    # The world is built once (moto, an organization, a domain) and every example goes to it.
    @fuzz(examples=40)
    @given(raw=received_mail(SEEDS))
    def receive(raw: bytes) -> None:
        ses_id, report = sim.receive(bucket, raw, ["inbox@example.com"])
        assert report["stored"] + report["quarantined"] == 1, report
        outcomes[ses_id] = report["problem"] or "stored"

    receive()
    every = len(outcomes) + 10
    stored = store.list_messages(table, org_id, mailbox["id"], per_page=every, cursor=None).items
    quarantined = table.query_page(
        partition=keys.mailbox_pk(org_id, mailbox["id"]), sk_prefix="QUAR#", per_page=every
    ).items
    assert sorted(m["ses_message_id"] for m in stored) == sorted(
        k for k, v in outcomes.items() if v == "stored"
    )
    assert sorted(q["source_id"] for q in quarantined) == sorted(
        k for k, v in outcomes.items() if v != "stored"
    )
    assert "stored" in outcomes.values()  # the fuzz reaches past the parser's refusals

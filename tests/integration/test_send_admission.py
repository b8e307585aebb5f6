"""A send's rate-limit count and its idempotency claim written as one transaction (api/admission.py),
through SendFunction's real handler: the answers (429, replay, in-progress, reused key, an ended
claim taken over) and the ``X-RateLimit-*`` headers are those of the two separate writes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.domain.tokens import hash_token
from mailroom.services.organizations import NewOrganization
from mailroom.settings import get_settings
from mailroom.store import keys, tokens
from mailroom.store.idempotency import Claim, IdempotencyStore
from mailroom.store.table import Table
from tests.support.lambda_api import Result, call
from tests.support.mailboxes import add_domain, create_mail_infrastructure, new_mailbox
from tests.support.sending import message_token, sent_messages

SEND = "/api/v1/messages/send"
LIMIT = 3


@pytest.fixture
def sender(org: NewOrganization, table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    bucket, _queue = create_mail_infrastructure()
    monkeypatch.setenv("MAILROOM_MAIL_BUCKET", bucket)
    monkeypatch.setenv("MAILROOM_SES_CONFIGURATION_SET", "mailroom-test-SendingConfigurationSet")
    monkeypatch.setenv("MAILROOM_RATE_LIMIT_PER_MINUTE", str(LIMIT))
    get_settings.cache_clear()
    add_domain(org, "example.com")
    alice = new_mailbox(org, "alice")
    token = message_token(org, alice["id"])
    item = tokens.find_by_hash(table, hash_token(token))
    assert item is not None
    # A minute's window must hold the whole test: start it early in one.
    if time.time() % 60 > 40:
        time.sleep(61 - time.time() % 60)
    yield {"org_id": org.organization["id"], "token": token, "token_id": item["id"]}
    get_settings.cache_clear()


def send(sender: dict[str, Any], key: str, body: dict[str, Any]) -> Result:
    return call("send", "POST", SEND, token=sender["token"], json_body=body, headers={"Idempotency-Key": key})


def fingerprint(sender: dict[str, Any], key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": sender["token_id"],
        "key": key,
        "method": "POST",
        "path": SEND,
        "body_sha256": hashlib.sha256(json.dumps(body).encode()).hexdigest(),
    }


def claims(table: Table, org_id: str) -> list[dict[str, Any]]:
    return table.query_page(partition=keys.idempotency_pk(org_id), per_page=100, cursor=None).items


def test_the_window_counts_down_and_the_next_send_is_429(sender: dict[str, Any], table: Table) -> None:
    before = len(sent_messages())
    seen = [send(sender, f"k{n}", {"to": "bob@example.net", "text": str(n)}) for n in range(LIMIT)]
    assert [r.status for r in seen] == [201] * LIMIT
    assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
    assert {r.headers["x-ratelimit-limit"] for r in seen} == {str(LIMIT)}
    claimed = len(claims(table, sender["org_id"]))

    blocked = send(sender, "k-over", {"to": "bob@example.net", "text": "over"})
    assert blocked.status == 429 and blocked.error_code == "rate_limited"
    assert blocked.json()["error"]["retryable"] is True
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.headers["x-ratelimit-remaining"] == "0"
    assert blocked.headers["x-ratelimit-reset"] == seen[0].headers["x-ratelimit-reset"]
    # Nothing was claimed for it (its retry after the window runs), nothing sent.
    assert len(claims(table, sender["org_id"])) == claimed
    assert len(sent_messages()) == before + LIMIT
    # A replay of an earlier send is refused too while the window is full, as every request is.
    assert send(sender, "k0", {"to": "bob@example.net", "text": "0"}).status == 429


def test_a_replay_is_counted_and_sends_nothing(sender: dict[str, Any]) -> None:
    body = {"to": "bob@example.net", "text": "once"}
    before = len(sent_messages())
    first, again = send(sender, "same", body), send(sender, "same", body)
    assert first.status == again.status == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert len(sent_messages()) == before + 1
    assert [first.headers["x-ratelimit-remaining"], again.headers["x-ratelimit-remaining"]] == ["2", "1"]


def test_a_reused_key_is_409(sender: dict[str, Any]) -> None:
    assert send(sender, "reused", {"to": "bob@example.net", "text": "a"}).status == 201
    before = len(sent_messages())
    other = send(sender, "reused", {"to": "bob@example.net", "text": "b"})
    assert (other.status, other.error_code) == (409, "idempotency_key_reused")
    assert other.headers["x-ratelimit-remaining"] == "1"
    assert len(sent_messages()) == before


def test_a_send_in_progress_is_409_and_an_ended_one_is_taken_over(
    sender: dict[str, Any], table: Table
) -> None:
    store = IdempotencyStore(table, sender["org_id"])
    busy, ended = {"to": "bob@example.net", "text": "busy"}, {"to": "bob@example.net", "text": "ended"}
    assert store.claim(fingerprint(sender, "busy", busy), remaining_ms=60_000).claim is Claim.NEW
    # An invocation that claimed its key and ended without finishing (its time ran out).
    assert store.claim(fingerprint(sender, "ended", ended), remaining_ms=0).claim is Claim.NEW
    time.sleep(0.01)
    before = len(sent_messages())
    response = send(sender, "busy", busy)
    assert (response.status, response.error_code) == (409, "idempotency_in_progress")
    assert response.json()["error"]["retryable"] is True
    taken_over = send(sender, "ended", ended)
    assert taken_over.status == 201 and "idempotent-replayed" not in taken_over.headers
    assert len(sent_messages()) == before + 1
    assert send(sender, "ended", ended).headers["idempotent-replayed"] == "true"


def test_a_send_refused_before_its_first_read_still_reports_the_window(sender: dict[str, Any]) -> None:
    """A 422 from the body's validation: the count is read back on its own."""
    refused = send(sender, "bad", {"to": "bob@example.net", "text": "x", "surprise": 1})
    assert refused.status == 422
    assert refused.headers["x-ratelimit-remaining"] == "2"
    replayed = send(sender, "bad", {"to": "bob@example.net", "text": "x", "surprise": 1})
    assert replayed.status == 422 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["x-ratelimit-remaining"] == "1"


def test_the_claim_in_the_transaction_writes_what_powertools_writes(
    org: NewOrganization, table: Table
) -> None:
    """``claim_op`` puts the item ``save_inprogress`` puts, and answers a taken key as ``claim``."""
    idempotency = IdempotencyStore(table, org.organization["id"])
    written: dict[str, dict[str, Any]] = {}
    for name, claim in (
        ("powertools", lambda request: idempotency.claim(request, remaining_ms=60_000)),
        ("transaction", lambda request: table.transact([idempotency.claim_op(request, remaining_ms=60_000)])),
    ):
        request = {"token": "tok_1", "key": name, "method": "POST", "path": "/x", "body_sha256": "ab"}
        claim(request)
        page = table.query_page(
            partition=keys.idempotency_pk(org.organization["id"]), per_page=10, cursor=None
        )
        seen = {str(w["SK"]) for w in written.values()}
        written[name] = next(i for i in page.items if str(i["SK"]) not in seen)
        assert idempotency.claim(request, remaining_ms=60_000).claim is Claim.IN_PROGRESS
        assert (
            idempotency.claim({**request, "body_sha256": "cd"}, remaining_ms=60_000).claim is Claim.MISMATCH
        )
    powertools, transaction = written["powertools"], written["transaction"]
    assert set(powertools) == set(transaction), (sorted(powertools), sorted(transaction))
    for attribute in ("status", "validation"):
        assert powertools[attribute] == transaction[attribute], attribute
    for attribute in ("ttl", "in_progress_expiration"):
        assert abs(int(powertools[attribute]) - int(transaction[attribute])) < 5_000, attribute

"""What makes a draft (a message in the Drafts folder) sent or replaced at most once.

* The claim: a conditional update of the draft's message item (``draft_claim``, a random token,
  and ``draft_claimed_at``), allowed only while it is in Drafts and unclaimed, or claimed longer
  ago than the claim's lease (a crashed request must not lock a draft forever). Two sends, or a
  send and a replace, of one draft: one claims it, the other is refused.
* The tombstone: ``DRAFTSENT#<ulid>`` in the mailbox partition (``ttl`` ``TOMBSTONE_DAYS``) once a
  draft was sent, naming the Sent copy: a later send of the same draft id is a clear 409 instead of
  a 404 that reads like a typo.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta

from mailroom import clock
from mailroom.store import keys
from mailroom.store.errors import ConditionFailed
from mailroom.store.mail import message_key, ulid_of
from mailroom.store.table import Item, Table
from mailroom.store.txn import Update

LEASE_SECONDS = 300
TOMBSTONE_DAYS = 7
DRAFTS = "drafts"


def tombstone_sk(draft_id: str) -> str:
    return f"DRAFTSENT#{ulid_of(draft_id)}"


def claim(table: Table, draft: Item) -> str | None:
    """Claim the draft; its claim token, or None when it is not a claimable draft any more."""
    token = secrets.token_hex(16)
    now = clock.utcnow()
    stale = clock.isoformat(now - timedelta(seconds=LEASE_SECONDS))
    change = Update(*message_key(draft["org_id"], draft["mailbox_id"], draft["id"]))
    change.set(draft_claim=token, draft_claimed_at=clock.isoformat(now))
    change.equals("folder_key", DRAFTS)
    claimed_at = change.name("draft_claimed_at")
    change.when(
        f"(attribute_not_exists({change.name('draft_claim')}) OR {claimed_at} < {change.value(stale)})"
    )
    try:
        change.apply(table)
    except ConditionFailed:
        return None
    return token


def release(table: Table, draft: Item, token: str) -> None:
    """Give a claim back (the send or the replace failed before anything happened)."""
    change = Update(*message_key(draft["org_id"], draft["mailbox_id"], draft["id"]))
    change.remove("draft_claim", "draft_claimed_at").equals("draft_claim", token)
    with contextlib.suppress(ConditionFailed):  # removed, or claimed again after the lease
        change.apply(table)


def record_sent(table: Table, draft: Item, sent_message_id: str) -> None:
    epoch = int(clock.utcnow().timestamp())
    table.put(
        {
            "PK": keys.mailbox_pk(draft["org_id"], draft["mailbox_id"]),
            "SK": tombstone_sk(draft["id"]),
            "type": "draft_sent",
            "draft_id": draft["id"],
            "sent_message_id": sent_message_id,
            "sent_at": clock.now_iso(),
            "ttl": epoch + TOMBSTONE_DAYS * 86400,
        }
    )


def sent_as(table: Table, org_id: str, mailbox_id: str, draft_id: str) -> str | None:
    """The Sent copy's id if this draft was sent (in the last ``TOMBSTONE_DAYS``)."""
    item = table.get(keys.mailbox_pk(org_id, mailbox_id), tombstone_sk(draft_id))
    return None if item is None else str(item["sent_message_id"])

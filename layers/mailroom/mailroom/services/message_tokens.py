"""Message tokens (``mr_msg_``): bound to one mailbox, carrying message scopes only.

Two kinds share one storage and one authorizer lookup:

* ``managed``: created by an ops token (``POST /api/v1/mailboxes/{id}/message-tokens``), listed and
  counted on the mailbox (at most the plan's ``limits.message_tokens``, so revoking them all stays
  cheap; the scopes only those the plan allows: 403 token_scope_blocked_by_plan), revoked
  with ``DELETE /api/v1/message-tokens/{id}``;
* ``session``: issued by the mailbox sign-in, short-lived, all three message scopes; revoked when
  the mailbox's password changes.

Both are revoked when the mailbox is deleted. The token is returned once; only its SHA-256 is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailroom import clock, errors, ids
from mailroom.domain import plans
from mailroom.domain.tokens import TokenType, issue_token
from mailroom.errors import Forbidden, LimitReached
from mailroom.services.mailbox_limits import org_limits
from mailroom.store import keys, message_tokens, organizations, txn
from mailroom.store import mailboxes as mailbox_store
from mailroom.store.errors import ConditionFailed
from mailroom.store.table import Item, Page, Table
from mailroom.store.txn import Update

LIMIT = "message_tokens"


@dataclass(frozen=True, slots=True)
class NewMessageToken:
    item: Item
    plaintext: str


def token_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item["name"],
        "type": item["token_type"],
        "kind": item.get("kind", message_tokens.MANAGED),
        "prefix": item["prefix"],
        "last_four": item["last_four"],
        "scopes": item.get("scopes", []),
        "mailbox_id": item["mailbox_id"],
        "expires_at": item.get("expires_at"),
        "used_at": item.get("used_at"),
        "created_at": item["created_at"],
        "created_by": item.get("created_by"),
    }


def issue(
    table: Table,
    mailbox: Item,
    *,
    name: str,
    scopes: Iterable[str],
    kind: str,
    created_by: str | None,
    expires_at: datetime | None,
) -> NewMessageToken:
    org_id, mailbox_id = mailbox["org_id"], mailbox["id"]
    issued = issue_token(TokenType.MESSAGE)
    item: Item = {
        "id": ids.new_id("mtk"),
        "org_id": org_id,
        "mailbox_id": mailbox_id,
        # Where a send from this token reads first (services/send_ahead.py): a mailbox's address and
        # domain never change, and the send checks them against the mailbox it reads.
        "mailbox_domain_id": mailbox.get("domain_id"),
        "mailbox_address": mailbox.get("address"),
        "name": name,
        "token_type": TokenType.MESSAGE.value,
        "kind": kind,
        "prefix": issued.prefix,
        "last_four": issued.last_four,
        "token_hash": issued.token_hash,
        "scopes": sorted(set(scopes)),
        "expires_at": clock.isoformat(expires_at) if expires_at else None,
        "expires_at_epoch": int(expires_at.timestamp()) if expires_at else None,
        "created_at": clock.now_iso(),
        "created_by": created_by,
    }
    # The mailbox must still exist when the token is written (a token for a deleted mailbox would
    # outlive the revocation that ran at delete time); managed tokens are counted on it, under the
    # plan's limit (guarded like every limit: changed since it was read, the write fails).
    bound = Update(keys.org_pk(org_id), keys.mailbox_sk(mailbox_id))
    operations = [message_tokens.create_op(item)]
    limit = 0
    if kind == message_tokens.MANAGED:
        org = organizations.get(table, org_id) or {}
        limit = org_limits(org)[LIMIT]
        bound.add(message_token_count=1).at_most("message_token_count", limit - 1)
        if LIMIT in (org.get("limits") or {}):
            operations.append(
                txn.check("org", keys.org_pk(org_id), keys.ORG_SK, f"limits.{LIMIT} = :limit", limit=limit)
            )
    try:
        txn.run(table, [*operations, bound.op("mailbox")])
    except txn.Rejected as rejected:
        if mailbox_store.get(table, org_id, mailbox_id) is None:
            raise errors.not_found("Mailbox") from rejected
        if rejected.roles == ["org"]:
            raise errors.concurrent_update() from rejected
        raise LimitReached(
            "message_token_limit_reached",
            f"The organization's plan allows {limit} message tokens per mailbox.",
            hint="Revoke unused tokens with DELETE /api/v1/message-tokens/{id}, or ask the operator for "
            "a plan with more.",
        ) from rejected
    return NewMessageToken(item=item, plaintext=issued.plaintext)


def create_managed(
    table: Table,
    mailbox: Item,
    *,
    name: str,
    scopes: Iterable[str],
    created_by: str,
    expires_at: datetime | None,
    plan_allowed: frozenset[str] | None = None,
) -> NewMessageToken:
    """A managed token of the mailbox (``POST /api/v1/mailboxes/{id}/message-tokens``): only scopes
    ``plan_allowed`` (the creator's plan) includes."""
    blocked = plans.blocked_scopes(scopes, plan_allowed) if plan_allowed is not None else []
    if blocked:
        raise Forbidden(
            "token_scope_blocked_by_plan",
            f"The organization's plan does not include the scope(s): {', '.join(blocked)}.",
            hint="Create the token with the scopes the plan allows (GET /api/v1/account names the plan).",
        )
    if expires_at is not None and expires_at <= clock.utcnow():
        raise errors.validation("expires_at must be in the future", field="expires_at")
    return issue(
        table,
        mailbox,
        name=name,
        scopes=scopes,
        kind=message_tokens.MANAGED,
        created_by=created_by,
        expires_at=expires_at,
    )


def list_managed(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> tuple[Page, int]:
    """A page of the mailbox's managed tokens and how many it has (sign-in tokens are not listed)."""
    page = message_tokens.list_page(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)
    return page, int(mailbox.get("message_token_count", 0))


def revoke(table: Table, org_id: str, token_id: str) -> Item:
    """Delete a message token (either kind); the revoked item. 404 when there is none."""
    item = message_tokens.get(table, org_id, token_id)
    if item is None:
        raise errors.not_found("Message token")
    operations = [message_tokens.delete_op(org_id, token_id)]
    if item.get("kind", message_tokens.MANAGED) == message_tokens.MANAGED:
        operations.append(
            Update(keys.org_pk(org_id), keys.mailbox_sk(item["mailbox_id"]))
            .add(message_token_count=-1)
            .op("mailbox")
        )
    try:
        txn.run(table, operations)
    except txn.Rejected as rejected:
        if f"message_token:{token_id}" in rejected.roles:
            raise errors.not_found("Message token") from rejected  # revoked concurrently
        # The mailbox is gone (its delete revokes its tokens anyway): no count left to move.
        try:
            table.delete(
                keys.org_pk(org_id), keys.message_token_sk(token_id), condition="attribute_exists(PK)"
            )
        except ConditionFailed as gone:
            raise errors.not_found("Message token") from gone
    return item


def bound_mailbox(table: Table, org_id: str, mailbox_id: str) -> Item | None:
    """The live mailbox a message token is bound to (None once it is gone: the token, which may
    outlive it for a moment before revocation completes, must then be refused)."""
    return mailbox_store.get(table, org_id, mailbox_id) if mailbox_id else None

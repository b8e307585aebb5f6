"""Mailbox data (docs/automation-inbound.md): per-mailbox JSON documents that automation conditions
read and ``store_data`` actions write, managed through ``/api/v1/mailbox/{id}/data/``.

A write reads the document, then writes it conditioned on the version read (store/mailbox_data.py),
so the key and byte counters move exactly once per change; a writer that lost a race reads again
(a few times, then 409 ``concurrent_update``). ``apply_store_data`` is the inbound side: the
``store_data`` actions of one message turned into writes for the message's own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom import errors
from mailroom.domain import mailbox_data as model
from mailroom.domain.route_sets import RouteAction, extract
from mailroom.domain.rules import MessageView
from mailroom.store import mailbox_data as store
from mailroom.store.table import Item, Page, Table

WRITE_ATTEMPTS = 4


def view(item: Item) -> dict[str, Any]:
    return {
        "key": item["key"],
        "value": model.decode(str(item["value"])),
        "bytes": int(item.get("bytes", 0)),
        "version": int(item.get("version", 0)),
        "updated_at": item.get("updated_at"),
    }


def summary(item: Item) -> dict[str, Any]:
    return {
        "key": item["key"],
        "bytes": int(item.get("bytes", 0)),
        "version": int(item.get("version", 0)),
        "updated_at": item.get("updated_at"),
    }


def _ids(mailbox: Item) -> tuple[str, str]:
    return str(mailbox["org_id"]), str(mailbox["id"])


def checked_key(key: str) -> str:
    if not model.valid_key(key):
        raise errors.validation(
            f"a data key is 1 to {model.MAX_KEY_CHARS} of A-Z a-z 0-9 _ . -",
            field="key",
            code="invalid_data_key",
        )
    return key


def list_documents(
    table: Table, mailbox: Item, *, per_page: int, cursor: str | None
) -> tuple[Page, dict[str, int]]:
    """A page of the mailbox's documents (key order) and the mailbox's totals."""
    org_id, mailbox_id = _ids(mailbox)
    found = store.page(table, org_id, mailbox_id, per_page=per_page, cursor=cursor)
    totals = store.meta(table, org_id, mailbox_id)
    return found, {"keys": int(totals.get("keys", 0)), "bytes": int(totals.get("bytes", 0))}


def get_document(table: Table, mailbox: Item, key: str) -> dict[str, Any]:
    item = store.get(table, *_ids(mailbox), checked_key(key))
    if item is None:
        raise errors.not_found("Data key")
    return view(item)


def _encoded(document: Any) -> str:
    try:
        return model.encode(document)
    except model.DataError as error:
        kind = errors.LimitReached if error.code == "document_too_large" else errors.Invalid
        fields = [{"field": "value", "message": error.message}]
        raise kind(error.code, error.message, fields=fields) from error


def _change(
    table: Table, mailbox: Item, key: str, change: Callable[[Item | None], str | None]
) -> Item | None:
    """Read the document, compute its new text (None: delete), write it under the version read;
    again when another writer came first. Returns the document as written (None: deleted)."""
    org_id, mailbox_id = _ids(mailbox)
    for _ in range(WRITE_ATTEMPTS):
        current = store.get(table, org_id, mailbox_id, key)
        text = change(current)
        try:
            store.write(table, org_id, mailbox_id, store.Write(key, text, current), max_keys=model.MAX_KEYS)
        except store.VersionChanged:
            continue
        except store.MailboxGone as gone:
            raise errors.not_found("Mailbox") from gone
        except store.KeyLimitReached as full:
            raise errors.LimitReached(
                "data_key_limit_reached",
                f"a mailbox holds at most {model.MAX_KEYS} data keys; delete one first",
            ) from full
        return store.get(table, org_id, mailbox_id, key) if text is not None else None
    raise errors.Conflict("concurrent_update", "the document changed meanwhile; read it and retry")


def put_document(table: Table, mailbox: Item, key: str, value: Any) -> tuple[dict[str, Any], bool]:
    """Create or replace document ``key``: (its summary, whether it was created). The summary, not
    the value: an API answer is kept by the idempotency record, which holds far less than 400 KB."""
    text = _encoded(value)
    created: list[bool] = []

    def replace(current: Item | None) -> str:
        created.append(current is None)
        return text

    written = _change(table, mailbox, checked_key(key), replace)
    assert written is not None
    return summary(written), created[-1]


def patch_document(table: Table, mailbox: Item, key: str, patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch to document ``key`` (absent: to null, so the patch creates it);
    its summary."""
    try:
        model.check_depth(patch)
    except model.DataError as error:
        fields = [{"field": "value", "message": error.message}]
        raise errors.Invalid(error.code, error.message, fields=fields) from error

    def merged(current: Item | None) -> str:
        before = model.decode(str(current["value"])) if current is not None else None
        return _encoded(model.merge_patch(before, patch))

    written = _change(table, mailbox, checked_key(key), merged)
    assert written is not None
    return summary(written)


def delete_document(table: Table, mailbox: Item, key: str) -> None:
    def gone(current: Item | None) -> None:
        if current is None:
            raise errors.not_found("Data key")

    _change(table, mailbox, checked_key(key), gone)


# --- inbound: store_data actions ------------------------------------------------------------------


@dataclass(slots=True)
class StoreDataOutcome:
    """What one ``store_data`` action did: done, skipped (the pattern did not match) or failed."""

    status: str
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StoreDataPlan:
    writes: list[store.Write]
    outcomes: list[StoreDataOutcome]  # one per action, in order


def apply_store_data(
    actions: Sequence[RouteAction],
    message: MessageView,
    current: Mapping[str, Item | None],
    *,
    refused: Mapping[str, str] | None = None,
) -> StoreDataPlan:
    """The writes the ``store_data`` actions of one message make to the documents as read
    (``current``: key → item or None), in order, so two actions on one key both apply; and each
    action's outcome. A key in ``refused`` (key → why: the key limit, a writer that kept winning)
    fails without a write."""
    documents: dict[str, Any] = {}
    changed: set[str] = set()
    outcomes: list[StoreDataOutcome] = []
    for action in actions:
        key = str(action.parameters["key"])
        if refused and key in refused:
            outcomes.append(StoreDataOutcome("failed", refused[key]))
            continue
        groups = extract(action, message)
        if groups is None:
            outcomes.append(StoreDataOutcome("skipped", "no_match"))
            continue
        if key not in documents:
            item = current.get(key)
            documents[key] = model.decode(str(item["value"])) if item is not None else model.ABSENT
        try:
            updated = model.stored(documents[key], groups, str(action.parameters.get("mode") or "merge"))
            model.encode(updated)  # the size and depth limits hold for every step
        except model.DataError as error:
            outcomes.append(StoreDataOutcome("failed", error.code))
            continue
        documents[key] = updated
        changed.add(key)
        outcomes.append(StoreDataOutcome("done", detail={"key": key, "fields": sorted(groups)}))
    writes = [store.Write(key, model.encode(documents[key]), current.get(key)) for key in sorted(changed)]
    return StoreDataPlan(writes, outcomes)

"""Reading and organizing one mailbox's mail: the use cases of the v1 Messages API.

The mailbox is always the message token's own (``api.mailbox_access``); every function takes its
item, as read at the start of the request (it carries the folder counters the lists show).

Choices, documented in docs/messages.md:

* A folder is named by its path (system names case-insensitively) or by its key (``inbox``,
  ``f01J...``); a custom path is found through its path claim, one GetItem.
* Deleting a message moves it to Trash; deleting it in Trash removes it for good: DynamoDB first
  (one transaction per ``store.mail.REMOVE_BATCH`` messages, with every counter), then its S3
  objects. In that order, a failure can leave unreferenced bytes under the mailbox's prefix
  (removed with the mailbox) but never a message whose bytes are gone.
* Emptying Trash or Spam removes at most ``EMPTY_BATCH`` messages per request and says whether
  more remain: a Lambda invocation never does unbounded work.
* A custom folder is deleted only when empty (409 ``folder_not_empty``).
* Bytes up to ``INLINE_LIMIT_BYTES`` are returned in the response; larger ones are a redirect to a
  short-lived pre-signed S3 URL (a Lambda response is at most 6 MB, and binary bodies travel
  base64-encoded, i.e. 4/3 larger).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from mailroom import clock, errors, ids
from mailroom.domain import addresses
from mailroom.domain.domain_names import InvalidDomainName, normalize_domain
from mailroom.errors import Conflict, MailroomError, NotFound
from mailroom.mail import folders
from mailroom.services.mail_views import API, message_full, message_summary, thread_view
from mailroom.store import blocked_senders, mail_objects
from mailroom.store import mail as store
from mailroom.store.errors import ConditionFailed, Contended, StoreError, Throttled
from mailroom.store.table import Item, Page, Table, values
from mailroom.store.txn import Rejected

INLINE_LIMIT_BYTES = 4 * 1024 * 1024  # 4 MiB base64-encoded is 5.3 MiB: under Lambda's 6 MB response
MAX_BULK = 100
EMPTY_BATCH = 100  # messages removed per folders:empty request
EMPTYABLE = frozenset({"trash", "spam"})
THREAD_MESSAGES = 50  # messages a thread view includes; the rest through its messages_next link
THREAD_BODY_BUDGET = 2_000_000  # UTF-8 bytes of bodies in one thread view
MESSAGE_BODY_BUDGET = 4_000_000  # UTF-8 bytes of text + html + html_sanitized in one message view
MAX_LABEL_CHARS = 100
_CHANGE_ATTEMPTS = 3
_CUSTOM_KEY_RE = re.compile(r"^f[0-9A-HJKMNP-TV-Z]{26}$")
_MIME_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_BODY_FIELDS = ("text", "html", "html_sanitized")


def _ids(mailbox: Item) -> tuple[str, str]:
    return mailbox["org_id"], mailbox["id"]


# --- folders -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Folder:
    key: str
    path: str
    system: bool
    created_at: str | None = None


def resolve_folder(table: Table, mailbox: Item, ref: str) -> Folder | None:
    """The folder named by ``ref`` — a path (system names in any case) or a folder key — or None.
    422 ``invalid_folder`` when ``ref`` cannot be a folder path at all."""
    org_id, mailbox_id = _ids(mailbox)
    try:
        path = folders.canonical(ref)
    except folders.InvalidFolder as exc:
        raise errors.validation(str(exc), field="folder", code="invalid_folder") from exc
    system = folders.system_key(path)
    if system is not None:
        return Folder(system, path, True)
    if _CUSTOM_KEY_RE.match(ref.strip()):
        item = store.get_folder(table, org_id, mailbox_id, ref.strip())
        if item is not None:
            return Folder(item["key"], item["path"], False, item.get("created_at"))
    claim = store.folder_by_path(table, org_id, mailbox_id, path)
    if claim is None:
        return None
    return Folder(claim["key"], claim["path"], False, claim.get("created_at"))


def require_folder(table: Table, mailbox: Item, ref: str, *, field: str = "folder") -> Folder:
    """A folder named in a query or a body: unknown is 422 ``unknown_folder``."""
    folder = resolve_folder(table, mailbox, ref)
    if folder is None:
        raise errors.validation(f"No folder '{ref[:80]}' in this mailbox", field=field, code="unknown_folder")
    return folder


def folder_in_path(table: Table, mailbox: Item, ref: str) -> Folder:
    """A folder named in the URL: unknown is 404."""
    folder = resolve_folder(table, mailbox, ref)
    if folder is None:
        raise NotFound(
            "not_found", "Folder not found", hint="List folders with GET /api/v1/messages/folders."
        )
    return folder


def folder_view(folder: Folder, mailbox: Item) -> dict[str, Any]:
    counts = store.folder_counts(mailbox, folder.key)
    return {
        "key": folder.key,
        "path": folder.path,
        "name": folder.path.rsplit("/", 1)[-1],
        "system": folder.system,
        "total": max(0, counts["total"]),
        "unread": max(0, counts["unread"]),
        "created_at": folder.created_at,
    }


def list_folders(table: Table, mailbox: Item) -> list[dict[str, Any]]:
    """System folders in their fixed order, then custom ones by path (one Query: at most
    MAX_CUSTOM_FOLDERS exist). Counts are the maintained counters on the mailbox item."""
    org_id, mailbox_id = _ids(mailbox)
    system = [Folder(key, path, True) for key, path in folders.SYSTEM_KEYS.items()]
    custom = sorted(
        (
            Folder(f["key"], f["path"], False, f.get("created_at"))
            for f in store.custom_folders(table, org_id, mailbox_id)
        ),
        key=lambda f: f.path,
    )
    return [folder_view(f, mailbox) for f in [*system, *custom]]


def _custom_path(raw: str) -> str:
    try:
        path = folders.canonical(raw)
    except folders.InvalidFolder as exc:
        raise errors.validation(str(exc), field="path", code="invalid_folder") from exc
    if folders.system_key(path) is not None:
        raise errors.conflict(f"'{path}' is a system folder", code="folder_exists")
    if _CUSTOM_KEY_RE.match(path):
        # Such a path would read as a folder key in URLs and filters.
        raise errors.validation(
            "A folder path cannot look like a folder key", field="path", code="invalid_folder"
        )
    return path


def create_folder(table: Table, mailbox: Item, raw_path: str) -> dict[str, Any]:
    org_id, mailbox_id = _ids(mailbox)
    path = _custom_path(raw_path)
    key = f"f{ids.ulid()}"
    try:
        item = store.create_folder(table, org_id, mailbox_id, key=key, path=path, created_at=clock.now_iso())
    except Rejected as rejected:
        if "path" in rejected.roles:
            raise errors.conflict(f"A folder '{path}' already exists", code="folder_exists") from rejected
        if "mailbox" in rejected.roles:
            raise errors.validation(
                f"A mailbox has at most {folders.MAX_CUSTOM_FOLDERS} custom folders",
                field="path",
                code="folder_limit_reached",
            ) from rejected
        raise
    return folder_view(Folder(key, path, False, item["created_at"]), mailbox)


def _system_folder_protected(folder: Folder, what: str) -> MailroomError:
    return errors.conflict(
        f"{folder.path} is a system folder and cannot be {what}",
        code="system_folder_protected",
        hint="Only custom folders can be renamed or deleted.",
    )


def rename_folder(table: Table, mailbox: Item, folder: Folder, raw_path: str) -> dict[str, Any]:
    if folder.system:
        raise _system_folder_protected(folder, "renamed")
    org_id, mailbox_id = _ids(mailbox)
    path = _custom_path(raw_path)
    if path != folder.path:
        try:
            store.rename_folder(table, org_id, mailbox_id, folder.key, path, old_path=folder.path)
        except Rejected as rejected:
            if "path" in rejected.roles:
                raise errors.conflict(f"A folder '{path}' already exists", code="folder_exists") from rejected
            raise errors.conflict(
                "The folder changed meanwhile; read it again", code="folder_changed"
            ) from rejected
    return folder_view(Folder(folder.key, path, False, folder.created_at), mailbox)


def delete_folder(table: Table, mailbox: Item, folder: Folder) -> None:
    if folder.system:
        raise _system_folder_protected(folder, "deleted")
    org_id, mailbox_id = _ids(mailbox)
    try:
        store.delete_folder(table, org_id, mailbox_id, folder.key, require_empty=True)
    except Rejected as rejected:
        if "mailbox" in rejected.roles:
            raise errors.conflict(
                f"Folder '{folder.path}' still holds messages",
                code="folder_not_empty",
                hint="Move or delete its messages first (POST /api/v1/messages:bulk), then delete it.",
            ) from rejected
        raise errors.not_found("Folder") from rejected


# --- listing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageFilters:
    folder: Folder | None = None
    thread_id: str | None = None
    unread: bool | None = None
    flagged: bool | None = None
    label: str | None = None
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    oldest_first: bool = False

    @property
    def searches(self) -> bool:
        """Filters no counter answers: with them, totals are unknown (null)."""
        return any(
            v is not None
            for v in (
                self.flagged,
                self.label,
                self.sender,
                self.recipient,
                self.subject,
                self.since,
                self.before,
            )
        )


def _filter_expression(
    filters: MessageFilters, *, folder_as_filter: bool
) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    # Placeholders are prefixed (#f_, :f_) so they never collide with the key condition's.
    clauses: list[str] = []
    names: dict[str, str] = {}
    raw: dict[str, Any] = {}
    if filters.unread is not None or filters.flagged is not None:
        raw["f_true"] = True
        names["#f_flags"] = "flags"
    if filters.unread is not None:
        names["#f_seen"] = "seen"
        # NOT (... = true) also matches a message without the flag.
        clauses.append("NOT (#f_flags.#f_seen = :f_true)" if filters.unread else "#f_flags.#f_seen = :f_true")
    if filters.flagged is not None:
        names["#f_flagged"] = "flagged"
        clauses.append(
            "#f_flags.#f_flagged = :f_true" if filters.flagged else "NOT (#f_flags.#f_flagged = :f_true)"
        )
    if filters.label is not None:
        names["#f_labels"], raw["f_label"] = "labels", filters.label
        clauses.append("contains(#f_labels, :f_label)")
    for attribute, text in (
        ("from_search", filters.sender),
        ("to_search", filters.recipient),
        ("subject_search", filters.subject),
    ):
        if text is not None:
            names[f"#f_{attribute}"], raw[f"f_{attribute}"] = attribute, store.search_text(text)
            clauses.append(f"contains(#f_{attribute}, :f_{attribute})")
    if folder_as_filter and filters.folder is not None:
        names["#f_folder"], raw["f_folder"] = "folder_key", filters.folder.key
        clauses.append("#f_folder = :f_folder")
    if not clauses:
        return None
    return " AND ".join(clauses), names, values(**raw)


def _between(filters: MessageFilters) -> tuple[str, str] | None:
    if filters.since is None and filters.before is None:
        return None
    low = ids.ulid_bound(int(filters.since.timestamp() * 1000), upper=False) if filters.since else "0" * 26
    # ``before`` is exclusive: the last millisecond before it.
    high = (
        ids.ulid_bound(int(filters.before.timestamp() * 1000) - 1, upper=True) if filters.before else "Z" * 26
    )
    return low, high


def _counted_total(table: Table, mailbox: Item, filters: MessageFilters) -> int | None:
    """The listing's total from maintained counters, or None where only reading could tell."""
    if filters.searches or (filters.thread_id and filters.folder):
        return None
    if filters.thread_id:
        org_id, mailbox_id = _ids(mailbox)
        thread = store.get_thread(table, org_id, mailbox_id, filters.thread_id) or {}
        total, unread = int(thread.get("message_count", 0)), int(thread.get("unread_count", 0))
    elif filters.folder:
        counts = store.folder_counts(mailbox, filters.folder.key)
        total, unread = counts["total"], counts["unread"]
    else:
        total = int(mailbox.get("message_count", 0))
        unread = sum(int(v) for k, v in mailbox.items() if k.startswith("fc_") and k.endswith("_unread"))
    if filters.unread is None:
        return max(0, total)
    return max(0, unread if filters.unread else total - unread)


def folder_paths_for(table: Table, mailbox: Item, messages: Sequence[Item]) -> dict[str, str]:
    """Folder key → path for these messages; custom folders are read only when one is needed."""
    if all(folders.is_system_key(m["folder_key"]) for m in messages):
        return dict(folders.SYSTEM_KEYS)
    return store.folder_paths(table, *_ids(mailbox))


def list_messages(
    table: Table, mailbox: Item, filters: MessageFilters, *, per_page: int, cursor: str | None
) -> tuple[Page, list[dict[str, Any]], int | None]:
    """One page (newest first unless ``oldest_first``), its summaries, and the total when a counter
    knows it. The folder or thread picks the index; dates bound its sort key; everything else is a
    filter on what the Query reads."""
    org_id, mailbox_id = _ids(mailbox)
    if filters.thread_id is not None and not ids.is_id(filters.thread_id, "thr"):
        raise errors.validation("thread must be a thread id (thr_...)", field="thread")
    page = store.list_messages(
        table,
        org_id,
        mailbox_id,
        per_page=per_page,
        cursor=cursor,
        folder_key=None if filters.thread_id else (filters.folder.key if filters.folder else None),
        thread_id=filters.thread_id,
        between=_between(filters),
        newest_first=not filters.oldest_first,
        filter_expression=_filter_expression(filters, folder_as_filter=filters.thread_id is not None),
    )
    paths = folder_paths_for(table, mailbox, page.items)
    views = [message_summary(m, paths.get(m["folder_key"])) for m in page.items]
    return page, views, _counted_total(table, mailbox, filters)


# --- one message -------------------------------------------------------------------------------


def load_message(table: Table, mailbox: Item, message_id: str) -> Item:
    """The mailbox's message, or 404 (also for ids of other mailboxes: the key includes the mailbox)."""
    if not ids.is_id(message_id, "msg"):
        raise errors.not_found("Message")
    message = store.get_message(table, *_ids(mailbox), message_id)
    if message is None:
        raise errors.not_found("Message")
    return message


def _body_bytes(view: dict[str, Any]) -> int:
    return sum(len((view.get(f) or "").encode()) for f in _BODY_FIELDS)


def full_view(
    table: Table, mailbox: Item, message: Item, *, budget: int = MESSAGE_BODY_BUDGET
) -> dict[str, Any]:
    """The message with bodies; fields that would push the response past ``budget`` are left out
    and named in ``omitted`` (the raw message always has everything)."""
    path = folder_paths_for(table, mailbox, [message]).get(message["folder_key"])
    view = message_full(message, path)
    omitted: list[str] = []
    for body_field in ("html", "text", "html_sanitized"):
        if _body_bytes(view) <= budget:
            break
        if view.get(body_field) is not None:
            view[body_field] = None
            omitted.append(body_field)
    view["omitted"] = omitted
    return view


def summary_view(table: Table, mailbox: Item, message: Item) -> dict[str, Any]:
    return message_summary(message, folder_paths_for(table, mailbox, [message]).get(message["folder_key"]))


# --- changes -----------------------------------------------------------------------------------

Change = Callable[[Item], dict[str, Any] | None]
"""What to change on a message, computed from the message as currently stored (None: nothing)."""


def _busy() -> MailroomError:
    return Conflict(
        "message_busy",
        "The message kept changing while this request tried to change it.",
        hint="Retry the request.",
        retryable=True,
    )


def apply_change(table: Table, message: Item, change: Change) -> Item:
    """Run a change with optimistic concurrency: when the message changed since it was read (the
    transaction's conditions fail), read it again and recompute, a few times."""
    current = message
    for _ in range(_CHANGE_ATTEMPTS):
        arguments = change(current)
        if arguments is None:
            return current
        # Every change stamps the message (v0 shows it as updated_at).
        arguments["set_fields"] = {**(arguments.get("set_fields") or {}), "updated_at": clock.now_iso()}
        try:
            return store.change_message(table, current, **arguments)
        except Rejected as rejected:
            if "folder" in rejected.roles:
                raise errors.validation(
                    "The target folder no longer exists", field="folder", code="unknown_folder"
                ) from rejected
        except (Contended, Throttled):
            # Still contended after the table's own retries: read the message again and retry.
            pass
        fresh = store.get_message(table, current["org_id"], current["mailbox_id"], current["id"])
        if fresh is None:
            raise errors.not_found("Message")
        current = fresh
    raise _busy()


def _clean_labels(labels: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(cleaned) > store.MAX_LABELS:
        raise errors.validation(
            f"A message has at most {store.MAX_LABELS} labels", field="labels", code="too_many_labels"
        )
    return cleaned


def set_flags(seen: bool | None, flagged: bool | None, labels: Sequence[str] | None) -> Change:
    cleaned = _clean_labels(labels) if labels is not None else None

    def change(message: Item) -> dict[str, Any] | None:
        del message
        return {"seen": seen, "flagged": flagged, "labels": cleaned}

    return change


def edit_labels(*, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Change:
    adding, removing = _clean_labels(add), set(_clean_labels(remove))

    def change(message: Item) -> dict[str, Any] | None:
        current = list(message.get("labels") or [])
        updated = [label for label in dict.fromkeys([*current, *adding]) if label not in removing]
        if updated == current:
            return None
        return {"labels": _clean_labels(updated)}

    return change


def move_to(folder_key: str, *, verdict: str | None = None) -> Change:
    """Move into a folder; with ``verdict``, record the user's spam/ham report on the message."""

    def change(message: Item) -> dict[str, Any] | None:
        arguments: dict[str, Any] = {}
        if message["folder_key"] != folder_key:
            arguments["folder_key"] = folder_key
        if verdict is not None and (message.get("verdicts") or {}).get("user_report") != verdict:
            verdicts = {**(message.get("verdicts") or {}), "user_report": verdict}
            arguments["set_fields"] = {"verdicts": verdicts, "reported_at": clock.now_iso()}
        return arguments or None

    return change


SPAM = move_to("spam", verdict="spam")
HAM = move_to("inbox", verdict="ham")
TO_TRASH = move_to("trash")


# --- removal -----------------------------------------------------------------------------------


def _object_keys(message: Item) -> list[str]:
    keys = [message["raw_key"]] if message.get("raw_key") else []
    if message.get("body_key"):
        keys.append(message["body_key"])
    keys += [a["key"] for a in message.get("attachments") or [] if a.get("key")]
    return keys


def purge(table: Table, messages: Sequence[Item]) -> list[Item]:
    """Remove messages for good (see the module docstring for the order); returns those removed."""
    removed = store.remove_messages(table, messages)
    doomed = [key for message in removed for key in _object_keys(message)]
    if doomed:
        try:
            mail_objects.delete(doomed)
        except StoreError:
            from mailroom.observability import logger, metrics

            # The messages are gone; their bytes stay under the mailbox prefix until the mailbox is.
            logger().exception("mail objects of removed messages not deleted", extra={"keys": doomed[:50]})
            metrics().add_metric(name="MailObjectsOrphaned", unit="Count", value=len(doomed))
    return removed


def delete_message(table: Table, message: Item) -> Item | None:
    """Outside Trash: move to Trash (returns the moved message). In Trash: remove for good (None)."""
    current = message
    for _ in range(_CHANGE_ATTEMPTS):
        if current["folder_key"] != "trash":
            return apply_change(table, current, TO_TRASH)
        if purge(table, [current]):
            return None
        fresh = store.get_message(table, current["org_id"], current["mailbox_id"], current["id"])
        if fresh is None:
            return None  # removed by someone else meanwhile: the outcome asked for
        current = fresh
    raise _busy()


def empty_folder(table: Table, mailbox: Item, folder: Folder) -> dict[str, Any]:
    """Remove up to EMPTY_BATCH messages of Trash or Spam for good, oldest first."""
    if folder.key not in EMPTYABLE:
        raise errors.validation(
            "Only Trash and Spam can be emptied", field="folder", code="folder_not_emptiable"
        )
    org_id, mailbox_id = _ids(mailbox)
    page = store.list_messages(
        table,
        org_id,
        mailbox_id,
        per_page=EMPTY_BATCH,
        cursor=None,
        folder_key=folder.key,
        newest_first=False,
    )
    removed = purge(table, page.items)
    before = store.folder_counts(mailbox, folder.key)["total"]
    remaining = max(0, before - len(removed))
    if page.next_cursor is None and len(removed) == len(page.items):
        remaining = 0  # the folder's index is exhausted: nothing is left whatever the counter said
    return {
        "folder": folder.path,
        "folder_key": folder.key,
        "removed": len(removed),
        "remaining": remaining,
        "more": remaining > 0,
    }


# --- bulk --------------------------------------------------------------------------------------


def bulk(
    table: Table, mailbox: Item, message_ids: Sequence[str], action: str, change: Change | None
) -> list[dict[str, Any]]:
    """Apply one action to up to MAX_BULK messages: one BatchGetItem, then a transaction per message
    (removals from Trash share transactions). One result per distinct id, in request order."""
    org_id, mailbox_id = _ids(mailbox)
    order = list(dict.fromkeys(message_ids))
    found = store.get_messages(table, org_id, mailbox_id, [m for m in order if ids.is_id(m, "msg")])
    results: dict[str, dict[str, Any]] = {}
    to_purge: list[Item] = []

    def failed(message_id: str, error: MailroomError) -> dict[str, Any]:
        return {
            "id": message_id,
            "status": "error",
            "result": None,
            "folder_key": None,
            "error": {"code": error.code, "message": error.message},
        }

    for message_id in order:
        message = found.get(message_id)
        if message is None:
            results[message_id] = failed(message_id, errors.not_found("Message"))
            continue
        if action == "delete" and message["folder_key"] == "trash":
            to_purge.append(message)
            continue
        try:
            changed = apply_change(table, message, TO_TRASH if action == "delete" else _required(change))
        except MailroomError as error:
            results[message_id] = failed(message_id, error)
            continue
        result = "moved_to_trash" if action == "delete" else "updated"
        results[message_id] = {
            "id": message_id,
            "status": "ok",
            "result": result,
            "folder_key": changed["folder_key"],
            "error": None,
        }
    if to_purge:
        removed = {m["id"] for m in purge(table, to_purge)}
        for message in to_purge:
            if message["id"] in removed:
                results[message["id"]] = {
                    "id": message["id"],
                    "status": "ok",
                    "result": "deleted",
                    "folder_key": None,
                    "error": None,
                }
            else:
                results[message["id"]] = failed(message["id"], _busy())
    return [results[m] for m in order]


def _required(change: Change | None) -> Change:
    if change is None:
        raise ValueError("the action needs a change")
    return change


# --- bytes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Download:
    """Bytes to return, or a pre-signed URL to redirect to (``content`` is then None)."""

    content: bytes | None
    redirect: str | None
    content_type: str
    filename: str


def _safe_type(content_type: str | None) -> str:
    value = (content_type or "").strip().lower()
    return value if _MIME_TYPE_RE.match(value) else "application/octet-stream"


def _download(key: str, size: int, *, content_type: str, filename: str) -> Download:
    if size > INLINE_LIMIT_BYTES:
        url = mail_objects.presigned_get(key, filename=_ascii_name(filename), content_type=content_type)
        return Download(None, url, content_type, filename)
    return Download(mail_objects.get_bytes(key), None, content_type, filename)


def _ascii_name(filename: str) -> str:
    return filename.encode("ascii", "replace").decode().replace("?", "_")


def raw_download(message: Item) -> Download:
    return _download(
        message["raw_key"],
        int(message.get("size", 0)),
        content_type="message/rfc822",
        filename=f"{message['id']}.eml",
    )


def attachment(message: Item, index: int) -> dict[str, Any]:
    for item in message.get("attachments") or []:
        if int(item["index"]) == index:
            return dict(item)
    raise errors.not_found("Attachment")


def attachment_link(item: dict[str, Any], *, seconds: int) -> str:
    """A pre-signed S3 GET of a stored attachment that downloads it (Content-Disposition: attachment
    with its file name) with a type safe to serve; valid for ``seconds``."""
    filename = item.get("filename") or f"attachment-{item['index']}"
    return mail_objects.presigned_get(
        item["key"],
        filename=_ascii_name(filename),
        content_type=_safe_type(item.get("content_type")),
        seconds=seconds,
    )


def attachment_download(message: Item, index: int) -> Download:
    item = attachment(message, index)
    filename = item.get("filename") or f"attachment-{index}"
    return _download(
        item["key"],
        int(item.get("size", 0)),
        content_type=_safe_type(item.get("content_type")),
        filename=filename,
    )


# --- threads -----------------------------------------------------------------------------------


def load_thread(table: Table, mailbox: Item, thread_id: str) -> Item:
    if not ids.is_id(thread_id, "thr"):
        raise errors.not_found("Thread")
    thread = store.get_thread(table, *_ids(mailbox), thread_id)
    if thread is None or int(thread.get("message_count", 0)) <= 0:
        raise errors.not_found("Thread")
    return thread


def thread_detail(table: Table, mailbox: Item, thread: Item) -> dict[str, Any]:
    """The thread and its first THREAD_MESSAGES messages in order, with bodies while they fit
    THREAD_BODY_BUDGET (later ones have ``body_included: false``: GET the message for its bodies).
    ``links.messages_next`` continues the listing when the thread has more."""
    org_id, mailbox_id = _ids(mailbox)
    page = store.list_messages(
        table,
        org_id,
        mailbox_id,
        per_page=THREAD_MESSAGES,
        cursor=None,
        thread_id=thread["id"],
        newest_first=False,
    )
    paths = folder_paths_for(table, mailbox, page.items)
    budget = THREAD_BODY_BUDGET
    messages: list[dict[str, Any]] = []
    for message in page.items:
        path = paths.get(message["folder_key"])
        view: dict[str, Any] | None = None
        if budget > 0:
            view = message_full(message, path)
            size = _body_bytes(view)
            if size <= budget:
                budget -= size
                view["body_included"] = True
            else:
                budget = 0  # keep the order readable: no later message gets bodies either
                view = None
        if view is None:
            view = {**message_summary(message, path), "body_included": False}
        messages.append(view)
    next_link = None
    if page.next_cursor:
        query = urlencode(
            {
                "thread": thread["id"],
                "order": "oldest",
                "per_page": THREAD_MESSAGES,
                "cursor": page.next_cursor,
            }
        )
        next_link = f"{API}/messages?{query}"
    return {**thread_view(thread), "messages": messages, "links": {"messages_next": next_link}}


def list_threads(
    table: Table, mailbox: Item, *, per_page: int, cursor: str | None
) -> tuple[Page, list[dict[str, Any]]]:
    page = store.list_threads(table, *_ids(mailbox), per_page=per_page, cursor=cursor)
    return page, [thread_view(t) for t in page.items]


# --- blocked senders ---------------------------------------------------------------------------


def block_pattern(raw: str) -> str:
    """``someone@example.org`` or ``@example.org`` (the whole domain), lower case."""
    value = raw.strip()
    try:
        if value.startswith("@"):
            return "@" + normalize_domain(value[1:]).lower()
        return addresses.normalize_any(value).lower()
    except (addresses.InvalidAddress, InvalidDomainName) as exc:
        raise errors.validation(
            f"'{value[:80]}' is neither an address nor @domain: {exc}",
            field="pattern",
            code="invalid_pattern",
        ) from exc


def blocked_view(item: Item) -> dict[str, Any]:
    pattern = item["pattern"]
    return {
        "id": pattern,
        "pattern": pattern,
        "type": "domain" if pattern.startswith("@") else "address",
        "created_at": item.get("created_at"),
    }


def block(table: Table, mailbox: Item, raw: str) -> dict[str, Any]:
    pattern = block_pattern(raw)
    try:
        item = blocked_senders.add(table, *_ids(mailbox), pattern)
    except ConditionFailed as exc:
        raise errors.conflict(f"{pattern} is already blocked", code="already_blocked") from exc
    except blocked_senders.LimitReached as exc:
        raise errors.validation(str(exc), field="pattern", code="blocked_sender_limit_reached") from exc
    return blocked_view(item)


def unblock(table: Table, mailbox: Item, raw: str) -> None:
    pattern = raw.strip().lower()
    if not pattern or not blocked_senders.remove(table, *_ids(mailbox), pattern):
        raise errors.not_found("Blocked sender")

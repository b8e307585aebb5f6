"""The MailTrigger view of mailboxes (mailtrigger-api.txt; docs/automation-mailbox.md): the same
mailboxes as ``/api/v1/mailboxes`` (services/mailboxes.py), shown with the links an automation
client follows, their archives (stored mail, optionally one route's hits) and their processing log
with its automation block (routes matched, each action's outcome).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mailroom import errors, ids
from mailroom.services import message_listing
from mailroom.services.folders import folder_paths_for
from mailroom.services.mail_views import message_summary
from mailroom.store import mail as mail_store
from mailroom.store import route_hits
from mailroom.store import rules as rule_store
from mailroom.store.table import Item, Page, Table

BASE = "/api/v1/mailbox"
LOG_PREFIX = "log_"


# --- mailboxes --------------------------------------------------------------------------------------


def mailbox_view(mailbox: Item) -> dict[str, Any]:
    mailbox_id = mailbox["id"]
    here = f"{BASE}/{mailbox_id}"
    return {
        "id": mailbox_id,
        "address": mailbox["address"],
        "name": mailbox.get("name"),
        "domain": mailbox["domain"],
        "domain_id": mailbox["domain_id"],
        "active": bool(mailbox.get("active", True)),
        "paused": bool(mailbox.get("paused", False)),
        "quota": int(mailbox["quota"]),
        "used_bytes": int(mailbox.get("used_bytes", 0)),
        "message_count": max(0, int(mailbox.get("message_count", 0))),
        "note": mailbox.get("note"),
        "created_at": mailbox["created_at"],
        "updated_at": mailbox["updated_at"],
        "links": {
            "self": here,
            "archives": f"{here}/archives",
            "data": f"{here}/data",
            "logs": f"{here}/logs",
            "testmail": f"{here}/testmail",
            "send": f"{here}/mail/send",
        },
    }


# --- archives ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # inclusive
    route_id: str | None = None
    sender: str | None = None
    receivers: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Archive:
    page: Page
    views: list[dict[str, Any]]
    total: int | None


def archive_view(summary: dict[str, Any]) -> dict[str, Any]:
    """A message as the archive shows it, from its v1 summary (services/mail_views.py)."""
    message_id = summary["id"]
    return {
        "id": message_id,
        "direction": "received" if summary["direction"] == "inbound" else "sent",
        "sender": summary["from"],
        "receivers": [*summary["to"], *summary["cc"]],
        "subject": summary["subject"],
        "date": summary["date"],
        "created_at": summary["received_at"],
        "message_id": summary["message_id"],
        "thread_id": summary["thread_id"],
        "folder": summary["folder"],
        "labels": summary["labels"],
        "preview": summary["preview"],
        "has_attachments": summary["has_attachments"],
        "size": summary["size"],
        "links": {"message": summary["links"]["self"], "raw": summary["links"]["raw"]},
    }


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ulid_range(query: ArchiveQuery) -> tuple[str, str]:
    low = ids.ulid_bound(_millis(query.since), upper=False) if query.since else "0" * 26
    high = ids.ulid_bound(_millis(query.until), upper=True) if query.until else "Z" * 26
    return low, high


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # ULIDs start there: no message is older


def _utc(moment: datetime | None) -> datetime | None:
    """A moment sent without a zone is UTC (as every moment Mailroom writes); one before the epoch
    is the epoch."""
    if moment is None:
        return None
    return max(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC), EPOCH)


def _after(moment: datetime) -> datetime | None:
    try:
        return moment + timedelta(milliseconds=1)
    except OverflowError:  # the last moment there is: nothing comes after it
        return None


def archives(
    table: Table, mailbox: Item, query: ArchiveQuery, *, per_page: int, cursor: str | None
) -> Archive:
    """A page of the mailbox's stored mail, newest first. ``route_id``: only the messages that route
    matched (its hit items, then the messages by key: two requests a page); a message deleted since
    is left out of its page."""
    query = replace(query, since=_utc(query.since), until=_utc(query.until))
    if query.since is not None and query.until is not None and query.since > query.until:
        raise errors.validation("since must not be later than until", field="since")
    if query.route_id is None:
        filters = message_listing.MessageFilters(
            sender=query.sender,
            recipient=query.receivers,
            subject=query.subject,
            since=query.since,
            # The listing's bound is exclusive; until is inclusive to the millisecond.
            before=_after(query.until) if query.until else None,
        )
        listing = message_listing.list_messages(table, mailbox, filters, per_page=per_page, cursor=cursor)
        return Archive(listing.page, [archive_view(v) for v in listing.views], listing.total)
    if not ids.is_id(query.route_id, "rte"):
        raise errors.validation("route must be a route id (rte_...)", field="route")
    if any(value is not None for value in (query.sender, query.receivers, query.subject)):
        raise errors.validation("route cannot be combined with sender, receivers or subject", field="route")
    org_id, mailbox_id = str(mailbox["org_id"]), str(mailbox["id"])
    page = route_hits.hits_page(
        table,
        org_id,
        mailbox_id,
        query.route_id,
        between=_ulid_range(query),
        per_page=per_page,
        cursor=cursor,
    )
    wanted = [f"msg_{hit['message_ulid']}" for hit in page.items]
    found = mail_store.get_messages(table, org_id, mailbox_id, wanted)
    messages = [found[message_id] for message_id in wanted if message_id in found]
    paths = folder_paths_for(table, mailbox, messages)
    views = [archive_view(message_summary(m, paths.get(m["folder_key"]))) for m in messages]
    return Archive(page, views, None)


# --- the processing log -----------------------------------------------------------------------------


def _automation(stored: Any) -> dict[str, Any] | None:
    if not isinstance(stored, dict):
        return None
    return {
        "routes": [
            {"id": r.get("id"), "name": r.get("name"), "matched": bool(r.get("matched"))}
            for r in stored.get("routes") or []
        ],
        "actions": [
            {
                "route_id": a.get("route_id"),
                "action_id": a.get("action_id"),
                "action_type": a.get("action_type"),
                "mode": a.get("mode"),
                "status": a.get("status"),
                "error": a.get("error"),
                "duration_ms": a.get("duration_ms"),
                "attempts": a.get("attempts"),
                "detail": a.get("detail"),
            }
            for a in stored.get("actions") or []
        ],
    }


def log_view(item: Item, mailbox_id: str) -> dict[str, Any]:
    log_id = f"{LOG_PREFIX}{str(item['SK']).rpartition('#')[2]}"
    message_id = item.get("message_id")
    return {
        "id": log_id,
        "message_id": message_id,
        "ses_message_id": item.get("ses_message_id"),
        "test": bool(item.get("test", False)),
        "from": item.get("from"),
        "subject": item.get("subject"),
        "outcome": item.get("outcome"),
        "folder": item.get("folder"),
        "rules_matched": list(item.get("rules_matched") or []),
        "rule_actions": [dict(a) for a in item.get("actions") or []],
        "auto_reply": item.get("auto_reply"),
        "evaluation_us": int(item.get("evaluation_us", 0)),
        "automation": _automation(item.get("automation")),
        "automation_pending": max(0, int(item.get("automation_pending", 0))),
        "created_at": item.get("created_at"),
        "links": {
            "self": f"{BASE}/{mailbox_id}/logs/{log_id}",
            "message": f"/api/v1/messages/{message_id}" if message_id else None,
        },
    }


def log_page(table: Table, mailbox: Item, *, per_page: int, cursor: str | None) -> Page:
    return rule_store.log_page(table, mailbox["org_id"], mailbox["id"], per_page=per_page, cursor=cursor)


def get_log(table: Table, mailbox: Item, log_id: str) -> Item:
    """One entry by its id (``log_<ulid>``), else 404."""
    if not ids.is_id(log_id, LOG_PREFIX.rstrip("_")):
        raise errors.not_found("Log entry")
    item = rule_store.get_log(table, mailbox["org_id"], mailbox["id"], log_id.removeprefix(LOG_PREFIX))
    if item is None:
        raise errors.not_found("Log entry")
    return item

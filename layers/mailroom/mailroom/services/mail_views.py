"""The message and thread resources as the v1 API (and webhook payloads) show them."""

from __future__ import annotations

from typing import Any

from mailroom.mail.parse import header_dict
from mailroom.mail.sanitize import sanitize_html
from mailroom.store import mail_objects
from mailroom.store.table import Item

API = "/api/v1"


def load_body(message: Item) -> dict[str, Any]:
    """``{text, html, headers}`` whether inline in the item or in S3."""
    if message.get("body") is not None:
        return dict(message["body"])
    if message.get("body_key"):
        return mail_objects.get_body(message["body_key"])
    return {"text": None, "html": None, "headers": []}


def attachment_view(message_id: str, attachment: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": attachment["index"],
        "attachment_id": attachment["attachment_id"],
        "filename": attachment.get("filename"),
        "content_type": attachment["content_type"],
        "size": attachment["size"],
        "content_id": attachment.get("content_id"),
        "disposition": attachment.get("disposition", "attachment"),
        "url": f"{API}/messages/{message_id}/attachments/{attachment['index']}",
    }


def message_summary(message: Item, folder_path: str | None = None) -> dict[str, Any]:
    """Metadata, preview and links: list items and event payloads (no bodies)."""
    message_id = message["id"]
    summary = {
        "id": message_id,
        "mailbox_id": message["mailbox_id"],
        "thread_id": message["thread_id"],
        "folder": folder_path,
        "folder_key": message["folder_key"],
        "direction": message["direction"],
        "from": message.get("from"),
        "to": message.get("to") or [],
        "cc": message.get("cc") or [],
        "reply_to": message.get("reply_to") or [],
        "subject": message.get("subject", ""),
        "date": message.get("date"),
        "received_at": message["received_at"],
        "message_id": message.get("rfc_message_id"),
        "in_reply_to": message.get("in_reply_to"),
        "references": message.get("references") or [],
        "preview": message.get("preview", ""),
        "size": int(message.get("size", 0)),
        "flags": {
            k: bool((message.get("flags") or {}).get(k, False))
            for k in ("seen", "flagged", "answered", "draft")
        },
        "labels": message.get("labels") or [],
        "has_attachments": bool(message.get("has_attachments")),
        "attachments": [attachment_view(message_id, a) for a in message.get("attachments") or []],
        "verdicts": message.get("verdicts") or {},
        "links": {
            "self": f"{API}/messages/{message_id}",
            "raw": f"{API}/messages/{message_id}/raw",
            "attachments": f"{API}/messages/{message_id}/attachments",
            "thread": f"{API}/threads/{message['thread_id']}",
        },
    }
    if message["direction"] == "outbound":
        summary["bcc"] = message.get("bcc") or []
        summary["delivery"] = message.get("delivery") or {"status": "sending"}
    return summary


def message_full(message: Item, folder_path: str | None = None) -> dict[str, Any]:
    """The summary plus bodies (HTML as sent and sanitized for display) and headers."""
    body = load_body(message)
    html = body.get("html")
    return {
        **message_summary(message, folder_path),
        "text": body.get("text"),
        "html": html,
        "html_sanitized": sanitize_html(html) if html else None,
        "headers": header_dict([(str(h[0]), str(h[1])) for h in body.get("headers") or []]),
        "truncated": message.get("truncated") or [],
        # Only on mail the mailbox's rules ran on (services/inbound_rules.py).
        **({"rules_applied": list(message["rules_applied"])} if "rules_applied" in message else {}),
    }


def thread_view(thread: Item) -> dict[str, Any]:
    return {
        "id": thread["id"],
        "mailbox_id": thread["mailbox_id"],
        "subject": thread.get("subject", ""),
        "preview": thread.get("preview", ""),
        "message_count": int(thread.get("message_count", 0)),
        "unread_count": max(0, int(thread.get("unread_count", 0))),
        "size": int(thread.get("size", 0)),
        "senders": sorted(thread.get("senders") or []),
        "recipients": sorted(thread.get("recipients") or []),
        "labels": sorted(thread.get("labels") or []),
        "last_message_id": thread.get("last_message_id"),
        "last_activity_at": thread.get("last_activity_at"),
        "received_at": thread.get("received_at"),
        "sent_at": thread.get("sent_at"),
        "created_at": thread.get("created_at"),
    }


def sent_view(message: Item, ses_message_id: str) -> dict[str, Any]:
    """What a send answers: the ids to follow it by, its delivery so far, and the Sent copy."""
    summary = message_summary(message)
    return {
        "message_id": message["id"],
        "thread_id": message["thread_id"],
        "rfc_message_id": message.get("rfc_message_id"),
        "ses_message_id": ses_message_id,
        "delivery": summary["delivery"],
        "message": summary,
    }

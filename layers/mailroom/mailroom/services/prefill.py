"""Prefilled compose data for a reply, a reply-all or a forward of a stored message.

``data`` has exactly the fields ``POST /api/v1/messages/send`` takes, so a client edits it and
posts it back: ``in_reply_to`` and ``references`` make the reply join the original's thread; a
forward's ``attachments`` are references ``{message_id, index}`` that the send reads from S3 (no
bytes go through the client). ``meta`` describes the original (and its attachments' sizes).

Reply goes to the original's Reply-To, else its sender; reply-all adds its To and Cc; the mailbox's
own address is never a recipient. Replying to a message this mailbox sent (a Sent copy) goes to
that message's recipients again, as mail clients do.
"""

from __future__ import annotations

import html as html_lib
from typing import Any

from mailroom.mail import quoting
from mailroom.mail.addresses import Address, address_only, stored_name
from mailroom.services.mail_views import attachment_view, load_body
from mailroom.services.message_detail import load_message
from mailroom.services.sending import AttachmentInput, SendRequest
from mailroom.store.table import Item, Table


def _from(mailbox: Item) -> str:
    return str(Address(stored_name(str(mailbox.get("name") or "")), str(mailbox["address"])))


def _quoted_html(original_html: str | None, attribution: str) -> str | None:
    if original_html is None:
        return None
    from mailroom.mail.sanitize import sanitize_html

    return (
        f"<br><br><div>{html_lib.escape(attribution)}</div>"
        f'<blockquote type="cite">{sanitize_html(original_html)}</blockquote>'
    )


def _compose_fields(mailbox: Item) -> dict[str, Any]:
    return {
        "from": _from(mailbox),
        "to": [],
        "cc": [],
        "bcc": [],
        "reply_to": [],
        "subject": "",
        "text": None,
        "html": None,
        "attachments": [],
        "headers": {},
        "labels": [],
        "in_reply_to": None,
        "references": [],
    }


def _original(message: Item) -> dict[str, Any]:
    return {
        "id": message["id"],
        "thread_id": message["thread_id"],
        "message_id": message.get("rfc_message_id"),
        "from": message.get("from"),
        "subject": message.get("subject", ""),
        "date": message.get("date") or message.get("received_at"),
        "direction": message["direction"],
    }


def reply(table: Table, mailbox: Item, message_id: str, *, reply_all: bool) -> dict[str, Any]:
    message = load_message(table, mailbox, message_id)
    body = load_body(message)
    sender = message.get("from")
    date = message.get("date") or message.get("received_at")
    if message["direction"] == "outbound":
        # A reply to our own sent message continues the conversation with its recipients.
        to = list(message.get("to") or [])
        cc = list(message.get("cc") or []) if reply_all else []
        own = {str(mailbox["address"]).lower()}
        to = [a for a in to if address_only(a) not in own]
        cc = [a for a in cc if address_only(a) not in own]
    else:
        to, cc = quoting.reply_recipients(
            own=[mailbox["address"]],
            sender=sender,
            reply_to=list(message.get("reply_to") or []),
            to=list(message.get("to") or []),
            cc=list(message.get("cc") or []),
            reply_all=reply_all,
        )
    attribution = f"On {date or 'an earlier date'}, {sender or 'the sender'} wrote:"
    rfc_message_id = message.get("rfc_message_id")
    data = {
        **_compose_fields(mailbox),
        "to": to,
        "cc": cc,
        "subject": quoting.reply_subject(str(message.get("subject") or "")),
        "text": quoting.quote(body.get("text"), sender=sender, date=date),
        "html": _quoted_html(body.get("html"), attribution),
        "in_reply_to": quoting.usable_message_id(rfc_message_id),
        "references": quoting.references_for_reply(rfc_message_id, message.get("references") or []),
    }
    return {
        "data": data,
        "meta": {"mode": "reply-all" if reply_all else "reply", "original": _original(message)},
    }


def forward(table: Table, mailbox: Item, message_id: str) -> dict[str, Any]:
    message = load_message(table, mailbox, message_id)
    body = load_body(message)
    sender = message.get("from")
    date = message.get("date") or message.get("received_at")
    subject = str(message.get("subject") or "")
    to = list(message.get("to") or [])
    stored = list(message.get("attachments") or [])
    header_lines = [
        "---------- Forwarded message ---------",
        f"From: {sender or ''}",
        f"Date: {date or ''}",
        f"Subject: {subject}",
        f"To: {', '.join(to)}",
    ]
    html = None
    if body.get("html") is not None:
        from mailroom.mail.sanitize import sanitize_html

        html = (
            "<br><br><div>"
            + "<br>".join(html_lib.escape(line) for line in header_lines)
            + f"</div><br>{sanitize_html(body['html'])}"
        )
    data = {
        **_compose_fields(mailbox),
        "subject": quoting.forward_subject(subject),
        "text": quoting.forward_block(body.get("text"), sender=sender, date=date, subject=subject, to=to),
        "html": html,
        # References, resolved by the send from S3: the original's bytes never pass through the client.
        "attachments": [
            {
                "message_id": message["id"],
                "index": int(a["index"]),
                "filename": a.get("filename"),
                "content_type": a["content_type"],
                "content_id": a.get("content_id"),
                "inline": a.get("disposition") == "inline",
            }
            for a in stored
        ],
    }
    return {
        "data": data,
        "meta": {
            "mode": "forward",
            "original": _original(message),
            "attachments": [attachment_view(message["id"], a) for a in stored],
        },
    }


def as_send_request(data: dict[str, Any], *, new_thread: bool = False) -> SendRequest:
    """Compose fields (a prefill's ``data``, edited) as the send service takes them: how an endpoint
    that replies or forwards in one call (agentmail's v0 ``/reply``, ``/forward``) sends."""

    def listed(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else [str(v) for v in value or []]

    return SendRequest(
        sender=data.get("from"),
        to=listed(data.get("to")),
        cc=listed(data.get("cc")),
        bcc=listed(data.get("bcc")),
        reply_to=listed(data.get("reply_to")),
        subject=str(data.get("subject") or ""),
        text=data.get("text"),
        html=data.get("html"),
        attachments=[AttachmentInput(**attachment) for attachment in data.get("attachments") or []],
        headers=dict(data.get("headers") or {}),
        labels=listed(data.get("labels")),
        in_reply_to=data.get("in_reply_to"),
        references=listed(data.get("references")),
        new_thread=new_thread,
    )

"""Drafts: messages in the Drafts folder (listed, read, flagged and deleted like any message, raw
MIME kept), saved from a send body and sent later exactly as saved.

Saving resolves what a send resolves (template, identity and its signature, From, attachments,
the MIME checks, the quota) except that a draft may have no recipient yet; ``in_reply_to`` (a
message id of this mailbox) fills what the reply helper would (recipients, ``Re:`` subject,
In-Reply-To, References) where the body leaves them empty, so the draft joins the original's
thread. Replacing (PUT) keeps the draft's id. The draft item keeps what the MIME does not say:
Bcc, custom headers, the identity and template used.

Sending a draft: claim it (``store.drafts``: only one send or replace at a time), send its fields
as saved through ``sending.send`` (the signature is in the bodies already: never appended
twice), record the tombstone (a later send of the id is 409 ``draft_already_sent``) and remove
the draft for good. A refused send gives the claim back: the draft stays as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailroom import clock, errors, ids
from mailroom.mail import compose as mime
from mailroom.mail.compose import ComposeError
from mailroom.mail.parse import Unparseable, parse
from mailroom.services import composing, identities, mailbox_policy, sending
from mailroom.services.composing import ComposeOptions
from mailroom.services.mail_views import load_body
from mailroom.services.message_detail import load_message
from mailroom.services.message_removal import purge
from mailroom.services.sending import AttachmentInput, SendRequest, Sent
from mailroom.store import drafts as store
from mailroom.store import mail as mail_store
from mailroom.store.mail import Stored
from mailroom.store.send_checks import ReadAhead
from mailroom.store.table import Item, Table

DRAFTS = store.DRAFTS


def busy() -> errors.MailroomError:
    return errors.conflict(
        "This draft is being sent or saved by another request.",
        code="draft_busy",
        hint="Read the draft again (GET /api/v1/messages/{uid}) and retry.",
    )


def already_sent(draft_id: str, sent_id: str) -> errors.MailroomError:
    return errors.conflict(
        f"Draft {draft_id} was sent already, as {sent_id}.", code="draft_already_sent", hint=None
    )


def load_draft(table: Table, mailbox: Item, draft_id: str) -> Item:
    """The mailbox's draft, 409 ``draft_already_sent`` for one sent lately, else 404."""
    try:
        message = load_message(table, mailbox, draft_id)
    except errors.NotFound:
        sent_id = (
            store.sent_as(table, mailbox["org_id"], mailbox["id"], draft_id)
            if ids.is_id(draft_id, "msg")
            else None
        )
        if sent_id is not None:
            raise already_sent(draft_id, sent_id) from None
        raise
    if message.get("folder_key") != DRAFTS:
        raise errors.validation(f"message {draft_id} is not in Drafts", field="draft_uid", code="not_a_draft")
    return message


def _reply_defaults(table: Table, mailbox: Item, request: SendRequest, original_id: str) -> SendRequest:
    from mailroom.services import prefill

    try:
        data = prefill.reply(table, mailbox, original_id, reply_all=False)["data"]
    except errors.NotFound as exc:
        raise errors.validation(
            f"no message {original_id[:64]} in this mailbox to reply to", field="in_reply_to"
        ) from exc
    if not (request.to or request.cc or request.bcc):
        request.to = list(data["to"])
    if not request.subject:
        request.subject = data["subject"]
    request.in_reply_to = data["in_reply_to"]
    if not request.references:
        request.references = list(data["references"])
    return request


def save(
    table: Table,
    mailbox: Item,
    request: SendRequest,
    options: ComposeOptions,
    *,
    reply_to_message: str | None = None,
    replacing: Item | None = None,
) -> Item:
    """Store ``request`` as a draft (a new one, or ``replacing`` one with the same id)."""
    if reply_to_message is not None:
        if request.in_reply_to:
            raise errors.validation(
                "give in_reply_to (a message id) or the threading headers", field="in_reply_to"
            )
        request = _reply_defaults(table, mailbox, request, reply_to_message)
    prepared = composing.prepare(table, mailbox, request, options)
    request = prepared.request
    sender = prepared.sender or sending.resolve_sender(table, mailbox, request.sender)
    labels = sending.clean_labels(request.labels)
    attachments = sending.resolve_attachments(table, mailbox, request.attachments)
    moment = clock.utcnow()
    try:
        composed = mime.compose(
            sending.draft_of(request, sender, attachments), now=moment.timestamp(), require_recipient=False
        )
    except ComposeError as exc:
        raise sending.compose_error(exc) from exc
    sending.check_quota(
        mailbox, len(composed.raw) - int(replacing["size"]) if replacing else len(composed.raw)
    )
    try:
        parsed = parse(composed.raw)
    except Unparseable as exc:
        raise sending.invalid("body", f"the draft cannot be stored: {exc.detail}") from exc
    if request.text is not None and "text" not in parsed.truncated:
        parsed.text = request.text
    if request.html is not None and "html" not in parsed.truncated:
        parsed.html = request.html

    message_id = replacing["id"] if replacing else f"msg_{ids.ulid(int(moment.timestamp() * 1000))}"
    if replacing is not None:
        token = store.claim(table, replacing)
        if token is None:
            raise busy()
        # The new draft takes the old one's id: the old one goes first (its bytes too, as the
        # new ones are written to the same keys).
        if not purge(table, [{**replacing, "draft_claim": token}]):
            store.release(table, replacing, token)
            raise busy()
    return _store(table, mailbox, request, composed, parsed, message_id, moment, labels, prepared, options)


def _store(
    table: Table,
    mailbox: Item,
    request: SendRequest,
    composed: mime.Composed,
    parsed: Any,
    message_id: str,
    moment: datetime,
    labels: list[str],
    prepared: composing.Prepared,
    options: ComposeOptions,
) -> Item:
    from mailroom.services.mail_delivery import Incoming, deliver

    outcome = deliver(
        table,
        Incoming(
            org_id=str(mailbox["org_id"]),
            mailbox=mailbox,
            raw=composed.raw,
            parsed=parsed,
            folder_key=DRAFTS,
            direction="outbound",
            received_at=moment,
            seen=True,
            labels=labels,
            extra={
                "bcc": [str(address) for address in composed.bcc],
                "flags": {"seen": True, "flagged": False, "answered": False, "draft": True},
                "draft": {
                    "identity_id": prepared.identity.identity_id if prepared.identity else None,
                    "template_id": options.template_id,
                    "headers": dict(request.headers),
                },
            },
            message_id=message_id,
            rfc_message_id=composed.message_id,
        ),
    )
    if outcome.stored is not Stored.STORED:
        raise errors.validation(
            "the draft does not fit the mailbox's quota", field="body", code="mailbox_over_quota"
        )
    return outcome.message


def request_of(table: Table, draft: Item) -> SendRequest:
    """The draft's fields as a send takes them, exactly as saved."""
    body = load_body(draft)
    meta = draft.get("draft") or {}
    return SendRequest(
        sender=draft.get("from"),
        to=list(draft.get("to") or []),
        cc=list(draft.get("cc") or []),
        bcc=list(draft.get("bcc") or []),
        reply_to=list(draft.get("reply_to") or []),
        subject=str(draft.get("subject") or ""),
        text=body.get("text"),
        html=body.get("html"),
        attachments=[
            AttachmentInput(message_id=str(draft["id"]), index=int(a["index"]))
            for a in draft.get("attachments") or []
        ],
        headers=dict(meta.get("headers") or {}),
        labels=list(draft.get("labels") or []),
        in_reply_to=draft.get("in_reply_to"),
        references=list(draft.get("references") or []),
    )


def send(table: Table, mailbox: Item, draft_id: str, *, ahead: ReadAhead | None = None) -> Sent:
    """Send the draft as saved and remove it from Drafts, exactly once (see the module docstring).
    ``ahead``: send checks read with the mailbox (services/send_ahead.py)."""
    blocked = mailbox_policy.send_blocked(mailbox)
    if blocked is not None:
        raise blocked
    draft = load_draft(table, mailbox, draft_id)
    token = store.claim(table, draft)
    if token is None:
        sent_id = store.sent_as(table, mailbox["org_id"], mailbox["id"], draft_id)
        raise already_sent(draft_id, sent_id) if sent_id else busy()
    try:
        request = request_of(table, draft)
        identity_id = (draft.get("draft") or {}).get("identity_id")
        # The identity is checked again (an alias may be gone); its signature is in the bodies.
        chosen = identities.for_send(table, mailbox, identity_id) if identity_id else None
        if not (request.to or request.cc or request.bcc):
            raise sending.invalid("to", "the draft has no recipient yet: add one (PUT) before sending")
        sent = sending.send(table, mailbox, request, sender=chosen.sender if chosen else None, ahead=ahead)
    except BaseException:
        store.release(table, draft, token)
        raise
    store.record_sent(table, draft, sent.message_id)
    claimed = mail_store.get_message(table, mailbox["org_id"], mailbox["id"], draft["id"])
    if claimed is not None:
        purge(table, [claimed])
    return sent
